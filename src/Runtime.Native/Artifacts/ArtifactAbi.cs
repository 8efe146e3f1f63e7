using System.Runtime.InteropServices;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The contract between an artifact (a wasm2c module linked with native/cowwasm-rt.c and the generated glue) and
/// this runtime, in one place: the ABI version, every symbol the glue writes and the loader resolves, the status
/// codes trampolines return, and the C structs both sides read.
/// <b>Keep in sync with native/cowwasm-rt.h</b> (CW_ABI_VERSION, CW_STATUS_*, cw_host_t, and wasm-rt.h's
/// wasm_rt_memory_t); bump <see cref="Version"/> when any of it changes.
/// </summary>
internal static class ArtifactAbi
{
    /// <summary>
    /// The artifact ABI (cowwasm-rt.c's CW_ABI_VERSION, also recorded in each metadata block). 2: artifacts carry
    /// <c>cw_metadata</c>; 3: the store barrier (<c>wasm_rt_memory_t.dirty</c>, and <c>allocate_memory</c> returns it);
    /// 4: <see cref="InstanceState"/> heads every instance, <see cref="HostTable.GuardThread"/>, <see cref="StatusInterrupted"/>,
    /// <see cref="GuardPages"/>; 5: <see cref="InstanceState.TablesChanged"/>, <see cref="TablesSize"/>,
    /// <see cref="TablesCapture"/>, <see cref="TablesRestore"/>.
    /// </summary>
    public const int Version = 5;

    /// <summary><c>const unsigned char cw_metadata[]</c>: the metadata block (<see cref="ArtifactMetadata"/>).</summary>
    public const string Metadata = "cw_metadata";

    /// <summary><c>const uint64_t cw_metadata_size</c>: the block's length.</summary>
    public const string MetadataSize = "cw_metadata_size";

    /// <summary>
    /// <c>const int cw_no_store_barrier</c>: exported only by artifacts built without the store barrier
    /// (<see cref="ArtifactOptions.StoreBarrier"/> false). Its absence means guest stores mark the dirty map.
    /// </summary>
    public const string NoStoreBarrier = "cw_no_store_barrier";

    /// <summary>
    /// <c>const uint64_t cw_guard_pages</c>: exported only by artifacts built with <see cref="BoundsChecks.GuardPages"/>;
    /// its value is the reservation their memories need (CW_GUARD_RESERVATION).
    /// </summary>
    public const string GuardPages = "cw_guard_pages";

    /// <summary><c>int cw_abi_version(void)</c> (the runtime's CW_ABI_VERSION).</summary>
    public const string AbiVersion = "cw_abi_version";

    /// <summary><c>void cw_set_host(const cw_host_t*)</c>.</summary>
    public const string SetHost = "cw_set_host";


    /// <summary><c>size_t cw_instance_size(void)</c> (glue).</summary>
    public const string InstanceSize = "cw_instance_size";

    /// <summary><c>void cw_init_module(void)</c> (glue).</summary>
    public const string InitModule = "cw_init_module";

    /// <summary><c>void cw_free(cw_inst_t*)</c> (glue).</summary>
    public const string Free = "cw_free";

    /// <summary><c>int cw_instantiate(cw_inst_t*, void* ctx)</c>: a trampoline (returns a status).</summary>
    public const string Instantiate = "cw_instantiate";

    /// <summary><c>wasm_rt_memory_t* cw_memory(cw_inst_t*)</c> (NULL without a memory).</summary>
    public const string Memory = "cw_memory";

    /// <summary><c>void* cw_global(cw_inst_t*, uint32_t index)</c>.</summary>
    public const string Global = "cw_global";

    /// <summary><c>int cw_clone(const cw_inst_t* tpl, cw_inst_t* dst, void* ctx, uint8_t* memory_data)</c>.</summary>
    public const string Clone = "cw_clone";

    /// <summary>
    /// <c>size_t cw_tables_size(const cw_inst_t*)</c>: the bytes <see cref="TablesCapture"/> writes — every table's
    /// length and elements, then one byte per droppable segment.
    /// </summary>
    public const string TablesSize = "cw_tables_size";

    /// <summary>
    /// <c>void cw_tables_capture(const cw_inst_t*, uint8_t* out)</c>: the tables and dropped-segment flags, with function
    /// references to the instance itself and to its host context written as markers, so that the state restores into
    /// any instance of the same artifact.
    /// </summary>
    public const string TablesCapture = "cw_tables_capture";

    /// <summary>
    /// <c>int cw_tables_restore(cw_inst_t*, const uint8_t* in, size_t length)</c>: 0; <see cref="StatusOutOfMemory"/>
    /// when a table could not be resized (the instance keeps its tables); -1 when the state is not one this artifact
    /// captures (nothing changed). Clears the instance's <see cref="InstanceState.TablesChanged"/> on success.
    /// </summary>
    public const string TablesRestore = "cw_tables_restore";

    /// <summary>
    /// <c>int cw_export_N(cw_inst_t*, void* ctx, const uint64_t* args, uint64_t* results)</c>: the trampoline of the
    /// N-th function export, in <see cref="WasmModuleInfo.FunctionExports"/> order.
    /// </summary>
    public static string ExportTrampoline(int index) => $"cw_export_{index}";

    /// <summary>CW_STATUS_HOST_ERROR: a host function failed; the host kept the exception.</summary>
    public const int StatusHostError = (int)TrapKind.HostError;

    /// <summary>CW_STATUS_EXIT: proc_exit; the host kept the exit code.</summary>
    public const int StatusExit = (int)TrapKind.Exit;

    /// <summary>CW_STATUS_OOM: the host could not allocate linear memory or a table.</summary>
    public const int StatusOutOfMemory = (int)TrapKind.OutOfMemory;

    /// <summary>CW_STATUS_INTERRUPTED: another thread interrupted the guest.</summary>
    public const int StatusInterrupted = (int)TrapKind.Interrupted;

    /// <summary>
    /// wasm-rt.h's <c>cw_instance_state_t</c>, the first member of every instance struct: { u32 unused; u32 interrupt;
    /// uintptr_t floor; u32 tables_changed; u32 reserved; }. The host writes <see cref="Interrupt"/> and
    /// <see cref="Floor"/> from other threads; guest code sets <see cref="TablesChanged"/> (CW_MARK_TABLES).
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct InstanceState
    {
        public uint Unused; // was the call depth
        public uint Interrupt;
        public nuint Floor;
        public uint TablesChanged;
        public uint Reserved;
    }

    /// <summary>wasm-rt.h's <c>wasm_rt_memory_t</c>: { u8* data; u32 pages, max_pages, size; u8* dirty; } (our header's fields).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct WasmRtMemory
    {
        public byte* Data;
        public uint Pages;
        public uint MaxPages;
        public uint Size;

        /// <summary>The store barrier's dirty map (<see cref="Memory.PageMemory.DirtyMap"/>), or null.</summary>
        public byte* Dirty;
    }

    /// <summary>cowwasm-rt.h's <c>cw_host_t</c>: the callbacks an artifact makes into .NET (<see cref="NativeHost"/>).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct HostTable
    {
        public delegate* unmanaged<nint, uint, uint, byte**, byte**, int> AllocateMemory;
        public delegate* unmanaged<nint, uint, uint, uint, int> GrowMemory;
        public delegate* unmanaged<nint, uint, ulong*, ulong*, int> CallImport;

        /// <summary><c>jmp_buf** (*guard_thread)(void)</c>: libcowwasm-signals.so's <c>cws_thread</c> (<see cref="Native.GuardPages"/>).</summary>
        public delegate* unmanaged<nint> GuardThread;
    }
}
