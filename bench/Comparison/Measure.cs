using System.Diagnostics;
using System.Globalization;

namespace CowWasm.Bench.Comparison;

/// <summary>Timing and /proc helpers for the comparison runner.</summary>
internal static class Measure
{
    /// <summary>Median of <paramref name="samples"/> timings of <paramref name="timed"/>, each after an untimed <paramref name="prepare"/>.</summary>
    public static TimeSpan Median(int samples, Action prepare, Action timed)
    {
        var times = new double[samples];
        for (int i = 0; i < samples; i++)
        {
            prepare();
            long start = Stopwatch.GetTimestamp();
            timed();
            times[i] = Stopwatch.GetElapsedTime(start).Ticks;
        }

        Array.Sort(times);
        return TimeSpan.FromTicks((long)times[samples / 2]);
    }

    /// <summary>Median of <paramref name="samples"/> timings of an asynchronous <paramref name="operation"/>.</summary>
    public static async Task<TimeSpan> MedianAsync(int samples, Func<ValueTask> operation)
    {
        var times = new TimeSpan[samples];
        for (int i = 0; i < samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await operation().ConfigureAwait(false);
            times[i] = Stopwatch.GetElapsedTime(start);
        }

        Array.Sort(times);
        return times[samples / 2];
    }

    /// <summary>Private_Dirty and Pss (bytes) of the reservations of <paramref name="memories"/>, in one pass over /proc/self/smaps.</summary>
    public static unsafe (long PrivateDirty, long Pss) Footprint(IEnumerable<CowWasm.Memory.PageMemory> memories) =>
        Footprint(memories.Select(m => ((nint)m.Pointer, CowWasm.Memory.Pages.ToBytes(m.MaxPageCount))).ToList());

    /// <summary>Private_Dirty and Pss (bytes) of the mappings that start inside any of <paramref name="ranges"/>, in one pass over /proc/self/smaps.</summary>
    public static (long PrivateDirty, long Pss) Footprint(IReadOnlyList<(nint Start, long Length)> ranges)
    {
        long privateDirty = 0, pss = 0;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            if (dash > 0 && line.Length > dash + 1 && char.IsAsciiHexDigit(line[0]) && line.Contains(' '))
            {
                long from = long.Parse(line[..dash], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                inside = ranges.Any(r => from >= r.Start && from < r.Start + r.Length);
                continue;
            }

            if (!inside)
            {
                continue;
            }

            if (line.StartsWith("Private_Dirty:", StringComparison.Ordinal))
            {
                privateDirty += Kilobytes(line) * 1024;
            }
            else if (line.StartsWith("Pss:", StringComparison.Ordinal))
            {
                pss += Kilobytes(line) * 1024;
            }
        }

        return (privateDirty, pss);
    }

    private static long Kilobytes(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    public static string Format(TimeSpan t) => t.TotalMilliseconds >= 1
        ? $"{t.TotalMilliseconds:N2} ms"
        : $"{t.TotalMicroseconds:N1} µs";
}
