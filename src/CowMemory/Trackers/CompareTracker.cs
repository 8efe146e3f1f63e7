namespace CowWasm.Memory.Trackers;

/// <summary>
/// Compares every page with a shadow copy taken at the last collect. Portable (no kernel feature) and exact
/// about content — a write that stores the bytes already there is not reported — but O(size) per collect.
/// </summary>
/// <remarks>
/// The per-page comparison is <see cref="MemoryExtensions.SequenceEqual{T}(Span{T}, ReadOnlySpan{T})"/>, which
/// the BCL vectorizes (Vector512/Vector256 on this hardware); we did not hand-roll a SIMD loop. The shadow is
/// private memory with the watched memory's reservation size, so it grows in place too.
/// </remarks>
internal sealed unsafe class CompareTracker : DirtyTracker
{
    private readonly PrivateMemory _shadow;

    public CompareTracker(PageMemory memory)
        : base(memory)
    {
        _shadow = new PrivateMemory(memory.PageCount, memory.MaxPageCount);
        try
        {
            ResetCore();
        }
        catch
        {
            _shadow.Dispose();
            throw;
        }
    }

    public override TrackerKind Kind => TrackerKind.Compare;

    private protected override bool ResyncsAfterDiscard => true;

    private protected override void CollectCore(List<PageRun> runs)
    {
        byte* live = Memory.PointerTo(0);
        byte* shadow = _shadow.PointerTo(0);
        long pageCount = Memory.PageCount;
        for (long page = 0; page < pageCount; page++)
        {
            // SAFETY: page < PageCount, and both memories map PageCount pages (the shadow follows resizes).
            var now = new ReadOnlySpan<byte>(live + Pages.ToBytes(page), Pages.Size);
            var then = new Span<byte>(shadow + Pages.ToBytes(page), Pages.Size);
            if (!now.SequenceEqual(then))
            {
                now.CopyTo(then);
                Pages.AppendCoalesced(runs, page, 1);
            }
        }
    }

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs) => _shadow.CopyRunsFrom(Memory, runs);

    private protected override void ResetCore() => _shadow.CopyRunsFrom(Memory, [new PageRun(0, Memory.PageCount)]);

    internal override void OnResized(long oldPageCount, long newPageCount)
    {
        _shadow.Resize(newPageCount);
        if (newPageCount > oldPageCount)
        {
            _shadow.CopyRunsFrom(Memory, [new PageRun(oldPageCount, newPageCount - oldPageCount)]);
        }
    }

    private protected override void DisposeCore() => _shadow.Dispose();
}
