using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// The committed state outside memory, which every replica adopts: the globals, and the tables with the dropped-segment
/// flags; and the identity of the commit that made it. Replaced as a whole by each commit; never mutated.
/// </summary>
internal sealed record CommittedState(ulong[] Globals, TableState Tables, CommitId Id)
{
    public static CommittedState Capture(IGuestInstance leader, CommitId id) => new(leader.CaptureGlobals(), leader.CaptureTables(), id);

    /// <summary>
    /// Makes <paramref name="instance"/>'s globals, and its tables when they may differ, the committed ones.
    /// <paramref name="tablesMayDiffer"/> covers what the instance's own flag cannot see: a commit that changed the
    /// tables, or a clone of a leader that holds a write's uncommitted tables.
    /// </summary>
    public void Apply(IGuestInstance instance, bool tablesMayDiffer = false)
    {
        instance.RestoreGlobals(Globals);
        if (tablesMayDiffer || instance.TablesChanged)
        {
            instance.RestoreTables(Tables);
        }
    }
}
