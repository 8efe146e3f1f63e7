namespace CowWasm.Memory.Sync;

/// <summary>
/// Sees each commit of a <see cref="SyncStrategy"/> from inside it, under the strategy's write lock (so calls never
/// overlap): the runs it is about to write into the base, before a byte changes, and the same runs once the base and
/// the in-process replicas hold them. A follower hub uses it to let other processes pin those pages first.
/// </summary>
public interface ICommitObserver
{
    /// <summary>
    /// Before the base changes. <paramref name="runs"/> are the pages the commit writes (changed pages only, with
    /// <see cref="SyncOptions.SkipUnchangedPages"/>); <paramref name="committedPageCount"/> the new committed length.
    /// Throwing refuses the commit: nothing has changed yet, and the caller rolls back.
    /// </summary>
    void BeforeBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount);

    /// <summary>After the base holds the commit. Must not throw: the commit has happened.</summary>
    void AfterBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount);
}
