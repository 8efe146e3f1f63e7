using System.Diagnostics;
using System.Globalization;
using CowWasm.Prolog;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// What building Trealla for our runtime costs from a fresh cache (<c>native_trealla_build_s</c>,
/// <c>native_trealla_build_peak_rss_gb</c>): the default build into a temporary cache directory, timed, with the
/// resident memory of this process and every process it started (wasm2c, the gcc drivers, cc1, as, ld) summed from
/// /proc every 50 ms; the peak of that sum is the build's peak RSS. The temporary cache is deleted afterwards.
/// </summary>
internal static class BuildCost
{
    public static async Task<(double Seconds, double PeakGb)> MeasureTreallaAsync(Action<string> progress)
    {
        string cache = Directory.CreateTempSubdirectory("cowwasm-build-cost-").FullName;
        using var stop = new CancellationTokenSource();
        long baseline = TreeRss(Environment.ProcessId), peak = baseline;
        Task sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, TreeRss(Environment.ProcessId));
                try
                {
                    await Task.Delay(50, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        });
        try
        {
            var clock = Stopwatch.StartNew();
            using WasmModule module = await TreallaGuest.LoadAsync(new ArtifactOptions { CacheDirectory = cache },
                new Progress<string>(m => progress($"fresh build: {m}"))).ConfigureAwait(false);
            double seconds = clock.Elapsed.TotalSeconds;
            if (module.Artifact is not { FromCache: false })
            {
                throw new InvalidOperationException("The fresh-cache build came from a cache: the measurement would be wrong.");
            }

            await stop.CancelAsync().ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
            progress(string.Create(CultureInfo.InvariantCulture,
                $"fresh build of Trealla: {seconds:F1} s, peak RSS of the build's processes {peak / 1e9:F2} GB (this process alone before it: {baseline / 1e9:F2} GB)"));
            return (seconds, peak / 1e9);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            Directory.Delete(cache, recursive: true);
        }
    }

    /// <summary>The resident bytes of <paramref name="root"/> and all its descendants, from /proc (0 for a process gone meanwhile).</summary>
    internal static long TreeRss(int root)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // pid (comm) state ppid …: comm may hold spaces and parentheses, so parse after the last ')'.
                string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                int parent = int.Parse(rest[1], CultureInfo.InvariantCulture);
                (children.TryGetValue(parent, out List<int>? list) ? list : children[parent] = []).Add(pid);
            }
            catch (IOException)
            {
                // exited while we looked
            }
        }

        long total = 0;
        var pending = new Stack<int>([root]);
        while (pending.TryPop(out int pid))
        {
            total += Rss(pid);
            foreach (int child in children.GetValueOrDefault(pid) ?? [])
            {
                pending.Push(child);
            }
        }

        return total;
    }

    private static long Rss(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }
}
