using CowWasm.Memory;
using CowWasm.Pool.Wasi;

namespace CowWasm.Pool.Wasm;

/// <summary>
/// A compiled guest module, whatever runs it. <see cref="WasmModule"/> (wasm2c artifacts) is the backend here;
/// a Wasmtime backend would implement these interfaces where its package is available (see docs/design.md).
/// </summary>
public interface IGuestModule : IDisposable
{
    /// <summary>What the module declares.</summary>
    WasmModuleInfo Info { get; }

    /// <summary>Creates an instance with <paramref name="linker"/>'s host functions.</summary>
    IGuestInstance Instantiate(Linker linker, InstanceOptions? options = null);
}

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

    /// <summary>A bounds-checked span of guest memory.</summary>
    Span<byte> GetMemory(long address, int length);

    /// <summary>An exported function.</summary>
    IGuestFunction GetFunction(string name);

    /// <summary>Every global's value.</summary>
    ulong[] CaptureGlobals();

    /// <summary>Restores globals captured from this instance or one of the same module.</summary>
    void RestoreGlobals(ReadOnlySpan<ulong> values);

    /// <summary>Re-reads the memory's length after it was resized from outside.</summary>
    void RefreshMemorySize();

    /// <summary>A new instance sharing this one's module, globals and tables, over <paramref name="memory"/>.</summary>
    IGuestInstance Clone(ILinearMemory? memory, InstanceOptions? options = null);
}

/// <summary>An exported function: raw slot calls (i32/i64 zero-extended, f32/f64 as bit patterns).</summary>
public interface IGuestFunction
{
    /// <summary>The export name.</summary>
    string Name { get; }

    /// <summary>The signature.</summary>
    WasmFunctionType Type { get; }

    /// <summary>Calls the function; throws <see cref="WasmTrapException"/> on a trap.</summary>
    void Invoke(ReadOnlySpan<ulong> args, Span<ulong> results);
}
