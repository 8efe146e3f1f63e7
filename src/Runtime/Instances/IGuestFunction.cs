namespace CowWasm.Runtime;

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
