namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>What <see cref="ModuleRewriter"/> made of a module.</summary>
/// <param name="Bytes">The rewritten module.</param>
/// <param name="GlobalExports">For every global, in index order, the export name it can be read and written by.</param>
/// <param name="Barrier">Whether stores mark the dirty map (memory <see cref="BarrierFunctions.MarkMemory"/>).</param>
/// <param name="BarrierRefusal">Why the barrier could not be added, when it was asked for and is not.</param>
/// <param name="ChangesTables">Whether guest code can change a table or drop a segment.</param>
/// <param name="Stores">Store instructions marked.</param>
/// <param name="BulkOperations">memory.fill, memory.copy and memory.init instructions routed through the barrier.</param>
/// <param name="DataChunks">Passive segments the init function writes (active segments merged where adjacent).</param>
internal sealed record RewrittenModule(
    byte[] Bytes,
    IReadOnlyList<string> GlobalExports,
    bool Barrier,
    string? BarrierRefusal,
    bool ChangesTables,
    int Stores,
    int BulkOperations,
    int DataChunks)
{
    /// <summary>The export that writes the active data segments and runs the original start function.</summary>
    public const string InitExport = "cowwasm:init";

    /// <summary>The export of memory 0 (so the host can tell Wasmtime about growth that happened outside it).</summary>
    public const string MemoryExport = "cowwasm:memory";

    /// <summary>The prefix of the exports the rewrite adds for globals.</summary>
    public const string GlobalExportPrefix = "cowwasm:global:";
}
