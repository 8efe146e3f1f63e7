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
    private long _prepared = -1; // the commit phase 1 prepared (a commit that wrote nothing has no phase 1: nothing to tell)

    public bool NeedsPages => false;

    public void BeforeBaseWrite(long sequence, IReadOnlyList<PageRun> runs, long committedPageCount)
    {
        hub.BeforeBaseWrite(runs, committedPageCount);
        _prepared = sequence;
    }

    public void Abandoned(long sequence)
    {
        hub.AbandonBaseWrite();
        _prepared = -1;
    }

    public ValueTask AfterBaseWrite(CommitRecord record)
    {
        if (record.Sequence == _prepared)
        {
            hub.AfterBaseWrite(record.MemoryByteLength / Pages.Size, FollowerPool.EncodeState(!record.TablesChanged, record.Globals));
        }

        return ValueTask.CompletedTask;
    }
}
