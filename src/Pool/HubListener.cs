using CowWasm.Memory;
using CowWasm.Memory.Sharing;

namespace CowWasm.Pool;

/// <summary>
/// A <see cref="FollowerHub"/> in a pool's listener list: phase 1 lets the followers pin the pages the commit writes;
/// phase 2 tells them the new length and state (globals, and whether the tables are as instantiated). It needs no page
/// bytes: followers map the base itself. A hub its owner disposed does nothing.
/// </summary>
internal sealed class HubListener(FollowerHub hub) : ICommitListener
{
    public bool NeedsPages => false;

    public void BeforeBaseWrite(long sequence, IReadOnlyList<PageRun> runs, long committedPageCount) => hub.BeforeBaseWrite(runs, committedPageCount);

    public void Abandoned(long sequence) => hub.AbandonBaseWrite();

    public ValueTask AfterBaseWrite(CommitRecord record)
    {
        hub.AfterBaseWrite(record.MemoryByteLength / Pages.Size, FollowerPool.EncodeState(!record.TablesChanged, record.Globals));
        return ValueTask.CompletedTask;
    }
}
