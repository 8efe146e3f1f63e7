namespace CowWasm.Runtime;

/// <summary>A function signature.</summary>
public sealed record WasmFunctionType(IReadOnlyList<WasmValueKind> Parameters, IReadOnlyList<WasmValueKind> Results)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"({string.Join(", ", Parameters)}) -> ({string.Join(", ", Results)})";
}
