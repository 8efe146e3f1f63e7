using CowWasm.Memory;
using CowWasm.Runtime.Wasi;

namespace CowWasm.Runtime;

/// <summary>An instance of a guest: memory from the memory engine, exports, globals, O(1) clone.</summary>
public interface IGuestInstance : IDisposable
{
    /// <summary>The linear memory (null without one). Valid until disposal; never moves.</summary>
    PageMemory? Memory { get; }

    /// <summary>Where the memory lives.</summary>
    ILinearMemory? LinearMemory { get; }

    /// <summary>The guest-visible memory size in bytes.</summary>
    long MemorySize { get; }

    /// <summary>Per-instance WASI state, if configured.</summary>
    WasiState? Wasi { get; }

    /// <summary>
    /// The embedder's per-instance slot: state its host functions keep for this instance (they reach it through the
    /// instance they are called with). The runtime never looks inside, except to reset it (<see cref="ResetHostState"/>).
    /// </summary>
    IHostState? HostState { get; set; }

    /// <summary>
    /// Returns per-instance host state to its state after instantiation: WASI's captured output and open files, and
    /// <see cref="HostState"/>. A pool calls it when a read ends and when a write commits or rolls back.
    /// </summary>
    void ResetHostState();

    /// <summary>
    /// Stops the running guest call from any thread: it traps with <see cref="TrapKind.Interrupted"/> at its next
    /// function entry or loop back-edge. The request stays until <see cref="ClearInterrupt"/> (a call made meanwhile
    /// traps at once). Thread-safe; a no-op after disposal.
    /// </summary>
    void Interrupt();

    /// <summary>Withdraws an <see cref="Interrupt"/> request; call it when no call is running.</summary>
    void ClearInterrupt();

    /// <summary>Whether an <see cref="Interrupt"/> request is pending.</summary>
    bool IsInterruptRequested { get; }

    /// <summary>A bounds-checked, writable span of guest memory: counts as a write of those pages (store barrier).</summary>
    Span<byte> GetMemory(long address, int length);

    /// <summary>A bounds-checked, read-only span of guest memory: counts as no write.</summary>
    ReadOnlySpan<byte> ReadMemory(long address, int length);

    /// <summary>An exported function.</summary>
    IGuestFunction GetFunction(string name);

    /// <summary>Every global's value.</summary>
    ulong[] CaptureGlobals();

    /// <summary>Restores globals captured from this instance or one of the same module.</summary>
    void RestoreGlobals(ReadOnlySpan<ulong> values);

    /// <summary>
    /// Whether guest code changed a table (table.set, table.grow, table.fill, table.copy, table.init) or dropped a
    /// segment (data.drop, elem.drop) since instantiation or the last <see cref="CaptureTables"/> or
    /// <see cref="RestoreTables"/>. A pool restores tables only when this is set, so most reads pay nothing for them.
    /// </summary>
    bool TablesChanged { get; }

    /// <summary>The tables and dropped-segment flags, and clears <see cref="TablesChanged"/>.</summary>
    TableState CaptureTables();

    /// <summary>
    /// Makes the tables and dropped-segment flags those of <paramref name="state"/> (captured from an instance of the
    /// same module), and clears <see cref="TablesChanged"/>. On failure the instance keeps its tables.
    /// </summary>
    /// <exception cref="ArgumentException">The state comes from another module.</exception>
    /// <exception cref="InsufficientMemoryException">A table could not be resized.</exception>
    void RestoreTables(TableState state);

    /// <summary>Re-reads the memory's length after it was resized from outside.</summary>
    void RefreshMemorySize();

    /// <summary>A new instance sharing this one's module, globals and tables, over <paramref name="memory"/>.</summary>
    IGuestInstance Clone(ILinearMemory? memory, InstanceOptions? options = null);
}
