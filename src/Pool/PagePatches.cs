using System.Buffers.Binary;
using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>How a <see cref="CommitRecord"/> holds the bytes of its runs' pages.</summary>
public enum PageEncoding
{
    /// <summary>Every page whole, 4096 bytes each, in run order.</summary>
    Full,

    /// <summary>
    /// Per page, only the byte ranges that differ from the page before the commit (<see cref="PagePatches"/>): applied
    /// onto the state the commit follows. A Trealla <c>assertz</c> dirties ~20 pages but changes ~300 bytes of them
    /// (measured 2026-12-07), so the log and the stream carry ~1 KB instead of ~80 KB.
    /// </summary>
    Patches,
}

/// <summary>
/// The <see cref="PageEncoding.Patches"/> layout: for each page of the runs, in order, a little-endian <c>u16</c> range
/// count, then per range <c>u16</c> offset in the page, <c>u16</c> length and the bytes. Ranges are ascending and
/// disjoint; equal stretches shorter than <see cref="MinGap"/> bytes are absorbed into the ranges around them, and a page
/// whose patch would be larger than the page is one range of 4096 bytes.
/// </summary>
public static class PagePatches
{
    /// <summary>The shortest equal stretch that splits two ranges (a range header costs 4 bytes).</summary>
    public const int MinGap = 8;

    /// <summary>The largest patch of one page: its count, one range header and the whole page.</summary>
    public const int MaxPageBytes = 2 + 4 + Pages.Size;

    /// <summary>
    /// Writes the patch that turns <paramref name="old"/> into <paramref name="now"/> (one page each) to
    /// <paramref name="destination"/> (at least <see cref="MaxPageBytes"/>) and returns its length.
    /// </summary>
    public static int Diff(ReadOnlySpan<byte> now, ReadOnlySpan<byte> old, Span<byte> destination)
    {
        if (now.Length != Pages.Size || old.Length != Pages.Size || destination.Length < MaxPageBytes)
        {
            throw new ArgumentException($"A page is {Pages.Size} bytes and its patch needs up to {MaxPageBytes}.");
        }

        int count = 0;
        int at = 2;
        int i = now.CommonPrefixLength(old);
        while (i < Pages.Size)
        {
            // A differing stretch starts at i: extend it over equal gaps shorter than MinGap.
            int end = i + 1;
            while (end < Pages.Size)
            {
                if (now[end] != old[end])
                {
                    end++;
                    continue;
                }

                int equal = now[end..].CommonPrefixLength(old[end..]);
                if (equal >= MinGap || end + equal == Pages.Size)
                {
                    break;
                }

                end += equal;
            }

            int length = end - i;
            if (at + 4 + length > Pages.Size)
            {
                return WholePage(now, destination); // no smaller than the page: send the page
            }

            BinaryPrimitives.WriteUInt16LittleEndian(destination[at..], (ushort)i);
            BinaryPrimitives.WriteUInt16LittleEndian(destination[(at + 2)..], (ushort)length);
            now.Slice(i, length).CopyTo(destination[(at + 4)..]);
            at += 4 + length;
            count++;
            i = end >= Pages.Size ? Pages.Size : end + now[end..].CommonPrefixLength(old[end..]);
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)count);
        return at;
    }

    private static int WholePage(ReadOnlySpan<byte> now, Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Pages.Size);
        now.CopyTo(destination[6..]);
        return MaxPageBytes;
    }

    /// <summary>
    /// Checks that <paramref name="patches"/> is exactly <paramref name="pageCount"/> well-formed page patches; returns
    /// null, or what is wrong.
    /// </summary>
    public static string? Check(ReadOnlySpan<byte> patches, long pageCount)
    {
        int at = 0;
        for (long page = 0; page < pageCount; page++)
        {
            if (at + 2 > patches.Length)
            {
                return $"the patches end at page {page} of {pageCount}";
            }

            int count = BinaryPrimitives.ReadUInt16LittleEndian(patches[at..]);
            at += 2;
            int next = 0;
            for (int r = 0; r < count; r++)
            {
                if (at + 4 > patches.Length)
                {
                    return $"the patches end inside page {page}";
                }

                int offset = BinaryPrimitives.ReadUInt16LittleEndian(patches[at..]);
                int length = BinaryPrimitives.ReadUInt16LittleEndian(patches[(at + 2)..]);
                if (offset < next || length == 0 || offset + length > Pages.Size)
                {
                    return $"page {page} has a range of {length} bytes at {offset}, out of order or outside the page";
                }

                if (at + 4 + length > patches.Length)
                {
                    return $"the patches end inside page {page}";
                }

                next = offset + length;
                at += 4 + length;
            }
        }

        return at == patches.Length ? null : $"{patches.Length - at} bytes follow the last page's patch";
    }

    /// <summary>
    /// Applies checked <paramref name="patches"/> for the pages of <paramref name="runs"/>, each onto the span
    /// <paramref name="page"/> gives for its index.
    /// </summary>
    public static void Apply(ReadOnlySpan<byte> patches, IReadOnlyList<PageRun> runs, PageSpan page)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(page);
        int at = 0;
        foreach (PageRun run in runs)
        {
            for (long index = run.StartPage; index < run.EndPage; index++)
            {
                int count = BinaryPrimitives.ReadUInt16LittleEndian(patches[at..]);
                at += 2;
                if (count == 0)
                {
                    continue;
                }

                Span<byte> target = page(index);
                for (int r = 0; r < count; r++)
                {
                    int offset = BinaryPrimitives.ReadUInt16LittleEndian(patches[at..]);
                    int length = BinaryPrimitives.ReadUInt16LittleEndian(patches[(at + 2)..]);
                    patches.Slice(at + 4, length).CopyTo(target[offset..]);
                    at += 4 + length;
                }
            }
        }
    }

    /// <summary>The writable span of page <paramref name="index"/>.</summary>
    public delegate Span<byte> PageSpan(long index);
}
