namespace CowWasm.Runtime.Native;

/// <summary>An exported function bound to an instance. Calls are allocation-free.</summary>
public sealed unsafe class WasmFunction : IGuestFunction
{
    private readonly WasmInstance _instance;
    private readonly int _index;

    internal WasmFunction(WasmInstance instance, string name, int index, WasmFunctionType type)
    {
        _instance = instance;
        Name = name;
        _index = index;
        Type = type;
    }

    /// <summary>The export name.</summary>
    public string Name { get; }

    /// <summary>The signature.</summary>
    public WasmFunctionType Type { get; }

    /// <summary>Calls with raw slots (i32/i64 zero-extended, f32/f64 as bit patterns).</summary>
    /// <exception cref="WasmTrapException">The guest trapped.</exception>
    public void Invoke(ReadOnlySpan<ulong> args, Span<ulong> results)
    {
        if (args.Length != Type.Parameters.Count || results.Length < Type.Results.Count)
        {
            throw new ArgumentException(
                $"{Name} {Type} takes {Type.Parameters.Count} argument(s) and {Type.Results.Count} result slot(s).");
        }

        ulong spare = 0;
        fixed (ulong* a = args)
        fixed (ulong* r = results)
        {
            _instance.Invoke(_index, Name, a, r == null ? &spare : r);
        }
    }
}
