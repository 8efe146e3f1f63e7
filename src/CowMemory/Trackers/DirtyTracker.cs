using CowWasm.Memory.Native;

namespace CowWasm.Memory.Trackers;

/// <summary>
/// Finds the pages of one <see cref="PageMemory"/> written since the last <see cref="Collect(List{PageRun})"/>.
/// </summary>
/// <remarks>
/// <para><b>Guarantee after Collect:</b> every page written since the previous Collect (or since creation,
/// <see cref="Reset"/> or <see cref="MarkClean"/> for that page) is in the returned runs. The kernel-assisted
/// and comparison trackers are exact; <see cref="TrackerKind.AllPages"/> over-reports by design; the
/// <see cref="TrackerKind.CowFile"/> tracker reports every private copy, so its pages count as collected only
/// once the owner returns them to the base (commit and rollback do).</para>
/// <para>When the owner itself rewrites pages to a known clean state (copying base bytes back into them) it
/// calls <see cref="MarkClean"/> so that its own write is not reported. When it returns just-collected pages of
/// a view to the base with <c>MADV_DONTNEED</c> it calls <see cref="OnDiscarded"/>, which is free for the
/// kernel trackers. A discard after a commit needs neither: the base then holds the bytes the tracker saw.</para>
/// <para><b>Thread-safety:</b> none; the owner serializes calls. Growth and shrinking of the memory are
/// followed automatically.</para>
/// </remarks>
public abstract class DirtyTracker : IDisposable
{
    private bool _disposed;

    private protected DirtyTracker(PageMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ObjectDisposedException.ThrowIf(memory.IsDisposed, memory);
        Memory = memory;
    }

    /// <summary>The memory this tracker watches.</summary>
    public PageMemory Memory { get; }

    /// <summary>Which mechanism this is.</summary>
    public abstract TrackerKind Kind { get; }

    /// <summary>Creates a tracker of <paramref name="kind"/> over <paramref name="memory"/>, attached to its resizes.</summary>
    /// <exception cref="KernelFeatureNotSupportedException">The kernel lacks what the tracker needs.</exception>
    /// <exception cref="ArgumentException">The tracker does not apply to this kind of memory (CoW-file on private memory).</exception>
    public static DirtyTracker Create(TrackerKind kind, PageMemory memory)
    {
        DirtyTracker tracker = kind switch
        {
            TrackerKind.CowFile => new CowFileTracker(memory as CowView ?? throw new ArgumentException(
                $"The CoW-file tracker needs a MAP_PRIVATE file view ({nameof(CowView)}); got {memory.GetType().Name}.",
                nameof(memory))),
            TrackerKind.UffdWriteProtect => new UffdTracker(memory),
            TrackerKind.SoftDirty => new SoftDirtyTracker(memory),
            TrackerKind.Compare => new CompareTracker(memory),
            TrackerKind.AllPages => new AllPagesTracker(memory),
            TrackerKind.StoreBarrier => new StoreBarrierTracker(memory),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown tracker kind."),
        };
        memory.Attach(tracker);
        return tracker;
    }

    /// <summary>Whether <paramref name="kind"/> works on this kernel (for <see cref="TrackerKind.CowFile"/>: PAGEMAP_SCAN or the pagemap fallback).</summary>
    public static bool IsSupported(TrackerKind kind) => kind switch
    {
        TrackerKind.UffdWriteProtect => KernelFeatures.IsSupported(KernelFeature.UserfaultfdWriteProtectAsync),
        TrackerKind.SoftDirty => KernelFeatures.IsSupported(KernelFeature.SoftDirty),
        _ => true,
    };

    /// <summary>Whether <paramref name="kind"/> can watch private anonymous memory (all but CoW-file).</summary>
    public static bool AppliesToPrivateMemory(TrackerKind kind) => kind != TrackerKind.CowFile;

    /// <summary>
    /// Replaces the contents of <paramref name="runs"/> with the sorted, coalesced runs of pages written since
    /// the last collect, and starts a new tracking interval for them.
    /// </summary>
    public void Collect(List<PageRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ObjectDisposedException.ThrowIf(_disposed, this);
        runs.Clear();
        if (Memory.PageCount > 0)
        {
            CollectCore(runs);
        }
    }

    /// <summary>Allocating convenience form of <see cref="Collect(List{PageRun})"/>.</summary>
    public IReadOnlyList<PageRun> Collect()
    {
        var runs = new List<PageRun>();
        Collect(runs);
        return runs;
    }

    /// <summary>The owner has just rewritten <paramref name="runs"/> itself to a clean state: do not report that write.</summary>
    public void MarkClean(IReadOnlyList<PageRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (int i = 0; i < runs.Count; i++)
        {
            Memory.CheckRun(runs[i]);
        }

        if (runs.Count > 0)
        {
            MarkCleanCore(runs);
        }
    }

    /// <summary>
    /// The owner has just returned collected <paramref name="runs"/> of a <see cref="CowView"/> to the base with
    /// <c>MADV_DONTNEED</c>. Kernel trackers need nothing (uffd's write-protect marker survives the discard,
    /// CoW copies and soft-dirty entries vanish with it); the compare tracker's shadow still holds the discarded
    /// bytes and is resynchronized.
    /// </summary>
    public void OnDiscarded(IReadOnlyList<PageRun> runs)
    {
        if (ResyncsAfterDiscard)
        {
            MarkClean(runs);
        }
    }

    /// <summary>Whether <see cref="OnDiscarded"/> must rewrite tracker state (true only for content comparison).</summary>
    private protected virtual bool ResyncsAfterDiscard => false;

    /// <summary>Forgets every write so far: the whole memory counts as clean from now on.</summary>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Memory.PageCount > 0)
        {
            ResetCore();
        }
    }

    private protected abstract void CollectCore(List<PageRun> runs);

    private protected abstract void MarkCleanCore(IReadOnlyList<PageRun> runs);

    private protected abstract void ResetCore();

    /// <summary>The watched memory changed size; new pages start clean, pages cut off are forgotten.</summary>
    internal virtual void OnResized(long oldPageCount, long newPageCount)
    {
    }

    /// <summary>Every page was mapped again (fresh VMAs, all pages clean): kernel state tied to the old mapping must be re-armed.</summary>
    internal virtual void OnRemapped()
    {
    }

    /// <summary>Stops tracking and releases kernel resources. The memory itself is not disposed.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Memory.Detach(this);
            DisposeCore();
        }

        GC.SuppressFinalize(this);
    }

    private protected virtual void DisposeCore()
    {
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} tracker over {Memory.PageCount} pages";
}
