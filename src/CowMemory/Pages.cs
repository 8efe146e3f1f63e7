namespace CowWasm.Memory;

/// <summary>Page-size facts and helpers. Wasm pages (64 KiB) are never mixed in: this library counts 4 KiB pages.</summary>
public static class Pages
{
    /// <summary>The size of a page in bytes (x86-64 base pages).</summary>
    public const int Size = 4096;

    /// <summary>log2 of <see cref="Size"/>.</summary>
    public const int Shift = 12;

    /// <summary>The byte length of <paramref name="pageCount"/> pages.</summary>
    public static long ToBytes(long pageCount) => pageCount << Shift;

    /// <summary>Sum of the page counts of <paramref name="runs"/>.</summary>
    public static long CountPages(IReadOnlyList<PageRun> runs)
    {
        long total = 0;
        for (int i = 0; i < runs.Count; i++)
        {
            total += runs[i].PageCount;
        }

        return total;
    }

    /// <summary>Cuts a sorted run list at <paramref name="pageCount"/>: runs past it go, a run across it is shortened.</summary>
    internal static void Clip(List<PageRun> runs, long pageCount)
    {
        while (runs.Count > 0 && runs[^1].StartPage >= pageCount)
        {
            runs.RemoveAt(runs.Count - 1);
        }

        if (runs.Count > 0 && runs[^1].EndPage > pageCount)
        {
            runs[^1] = runs[^1] with { PageCount = pageCount - runs[^1].StartPage };
        }
    }

    /// <summary>Appends a run to a sorted run list, merging it with the last run when they touch.</summary>
    internal static void AppendCoalesced(List<PageRun> runs, long startPage, long pageCount)
    {
        if (pageCount <= 0)
        {
            return;
        }

        if (runs.Count > 0)
        {
            PageRun last = runs[^1];
            if (last.EndPage == startPage)
            {
                runs[^1] = last with { PageCount = last.PageCount + pageCount };
                return;
            }
        }

        runs.Add(new PageRun(startPage, pageCount));
    }

    /// <summary>
    /// Appends to <paramref name="output"/> the intersection of two sorted, non-overlapping run lists
    /// (a merge walk: O(|a| + |b|), no allocation beyond the output).
    /// </summary>
    internal static void Intersect(IReadOnlyList<PageRun> a, IReadOnlyList<PageRun> b, List<PageRun> output)
    {
        int i = 0, j = 0;
        while (i < a.Count && j < b.Count)
        {
            long start = Math.Max(a[i].StartPage, b[j].StartPage);
            long end = Math.Min(a[i].EndPage, b[j].EndPage);
            AppendCoalesced(output, start, end - start);
            if (a[i].EndPage < b[j].EndPage)
            {
                i++;
            }
            else
            {
                j++;
            }
        }
    }

    /// <summary>Appends to <paramref name="output"/> the union of two sorted, non-overlapping run lists, coalesced.</summary>
    internal static void Union(IReadOnlyList<PageRun> a, IReadOnlyList<PageRun> b, List<PageRun> output)
    {
        int i = 0, j = 0;
        while (i < a.Count || j < b.Count)
        {
            PageRun next = j >= b.Count || (i < a.Count && a[i].StartPage <= b[j].StartPage) ? a[i++] : b[j++];
            if (output.Count > 0 && output[^1].EndPage >= next.StartPage)
            {
                PageRun last = output[^1];
                output[^1] = last with { PageCount = Math.Max(last.EndPage, next.EndPage) - last.StartPage };
            }
            else
            {
                output.Add(next);
            }
        }
    }

    internal static void ValidatePageCount(long pageCount, string paramName)
    {
        if (pageCount < 0)
        {
            throw new ArgumentOutOfRangeException(paramName, pageCount, "A page count cannot be negative.");
        }

        if (pageCount > MaxPageCount)
        {
            throw new ArgumentOutOfRangeException(paramName, pageCount,
                $"A page count cannot exceed {MaxPageCount} pages ({ToBytes(MaxPageCount) >> 30} GiB).");
        }
    }

    /// <summary>The largest memory this library manages: 64 GiB, far beyond Wasm32's 4 GiB.</summary>
    public const long MaxPageCount = 1L << 24;
}
