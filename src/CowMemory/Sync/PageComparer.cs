namespace CowWasm.Memory.Sync;

/// <summary>
/// Content-aware sync (<see cref="SyncOptions.SkipUnchangedPages"/>): splits reported pages into those whose bytes
/// differ from the base's and those a guest rewrote with the same bytes.
/// </summary>
/// <remarks>
/// Both sides are read in place: the base through its read-only shared mapping (<see cref="PageBase.Mapped"/>, no
/// syscall; a <c>pread</c> per run measured as most of a Trealla reset), the memory directly. Safe to call on
/// distinct memories concurrently.
/// </remarks>
internal static unsafe class PageComparer
{
    /// <summary>Pages compared per slice of the base.</summary>
    public const int ChunkPages = 64;

    /// <summary>
    /// Fills <paramref name="differing"/> with the pages of <paramref name="runs"/> whose bytes in
    /// <paramref name="memory"/> differ from the base's (pages past the base's committed length read as zero);
    /// returns how many pages did not differ. With <paramref name="restore"/>, also copies the base's bytes over
    /// each differing page (a keep-resident reset), without passing through the memory's store-barrier marks.
    /// </summary>
    public static long SplitByContent(PageBase pageBase, PageMemory memory, IReadOnlyList<PageRun> runs, List<PageRun> differing, bool restore)
    {
        differing.Clear();
        long same = 0;
        for (int r = 0; r < runs.Count; r++)
        {
            PageRun run = runs[r];
            memory.CheckRun(run);
            for (long page = run.StartPage; page < run.EndPage; page += ChunkPages)
            {
                var chunk = new PageRun(page, Math.Min(ChunkPages, run.EndPage - page));
                ReadOnlySpan<byte> baseBytes = pageBase.Mapped(chunk); // pages past the committed length are zero
                for (int i = 0; i < chunk.PageCount; i++)
                {
                    // SAFETY: CheckRun proved every page of the run lies inside the memory's mapped length.
                    var own = new Span<byte>(memory.PointerTo(chunk.StartPage + i), Pages.Size);
                    ReadOnlySpan<byte> committed = baseBytes.Slice(i * Pages.Size, Pages.Size);
                    if (own.SequenceEqual(committed))
                    {
                        same++;
                        continue;
                    }

                    Pages.AppendCoalesced(differing, chunk.StartPage + i, 1);
                    if (restore)
                    {
                        committed.CopyTo(own);
                    }
                }
            }
        }

        return same;
    }

    /// <summary>
    /// Gives <paramref name="scribbled"/> the base's bytes back: all of them (one pread a run), or, when
    /// <paramref name="contentAware"/>, only the pages whose bytes differ. Returns the pages copied.
    /// </summary>
    public static long CopyBack(PageBase pageBase, PageMemory memory, List<PageRun> scribbled, List<PageRun> differing, bool contentAware)
    {
        if (!contentAware)
        {
            pageBase.ReadRuns(memory, scribbled);
            return Pages.CountPages(scribbled);
        }

        SplitByContent(pageBase, memory, scribbled, differing, restore: true);
        return Pages.CountPages(differing);
    }
}
