using System.Numerics;

namespace CowWasm.Memory;

/// <summary>One bit a page; turns set bits back into coalesced runs. Not thread-safe.</summary>
internal struct PageBitmap(long pageCount)
{
    private readonly ulong[] _words = new ulong[(pageCount + 63) / 64];

    public readonly void Set(PageRun run) => Apply(run, set: true);

    public readonly void Clear(PageRun run) => Apply(run, set: false);

    public readonly void ClearAll() => Array.Clear(_words);

    public readonly bool IsSet(long page) => (_words[page >> 6] & (1UL << (int)(page & 63))) != 0;

    /// <summary>Appends the runs of set bits within [fromPage, toPage).</summary>
    public readonly void ToRuns(long fromPage, long toPage, List<PageRun> runs)
    {
        toPage = Math.Min(toPage, (long)_words.Length * 64);
        long page = fromPage;
        while (page < toPage)
        {
            ulong word = _words[page >> 6] >> (int)(page & 63);
            if (word == 0)
            {
                page = (page | 63) + 1;
                continue;
            }

            page += BitOperations.TrailingZeroCount(word);
            if (page >= toPage)
            {
                break;
            }

            long start = page;
            while (page < toPage && IsSet(page))
            {
                page++;
            }

            Pages.AppendCoalesced(runs, start, page - start);
        }
    }

    private readonly void Apply(PageRun run, bool set)
    {
        long end = Math.Min(run.EndPage, (long)_words.Length * 64);
        for (long page = Math.Max(0, run.StartPage); page < end; page++)
        {
            ulong mask = 1UL << (int)(page & 63);
            if (set)
            {
                _words[page >> 6] |= mask;
            }
            else
            {
                _words[page >> 6] &= ~mask;
            }
        }
    }
}
