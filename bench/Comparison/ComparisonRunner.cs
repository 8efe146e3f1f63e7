using CowWasm.Runtime.Native;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CowWasm.Bench.Reporting;
using Spectre.Console;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// <c>compare [--full] [--out DIR]</c>: the strategy comparison <c>./run.sh</c> runs. Prints a table and writes
/// <c>latest.md</c>, <c>summary.json</c> and plots (PNG and SVG) to DIR (default docs/results).
/// </summary>
internal static class ComparisonRunner
{
    private const string Usage = "Usage: compare [--full] [--guest default|trealla] [--out DIR]";

    public static int Run(string[] args)
    {
        bool full = false;
        string guest = "default";
        string outDir = Path.Combine("docs", "results");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--full":
                    full = true;
                    break;
                case "--guest" when i + 1 < args.Length && args[i + 1] is "default" or "trealla":
                    guest = args[++i];
                    break;
                case "--out" when i + 1 < args.Length:
                    outDir = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"compare: bad option '{args[i]}'{(i + 1 < args.Length ? $" '{args[i + 1]}'" : "")}. {Usage}");
                    return 2;
            }
        }

        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        void Progress(string message) => AnsiConsole.MarkupLine($"[grey]{clock.Elapsed:mm\\:ss}[/] {Markup.Escape(message)}");
        List<Row> rows;
        Dictionary<string, object?> summary;
        string suffix;
        if (guest == "trealla")
        {
            var trealla = new TreallaComparison(Progress);
            trealla.RunAsync().GetAwaiter().GetResult();
            rows = trealla.Rows;
            summary = TreallaSummary(rows);
            foreach ((string key, object? value) in trealla.Seed)
            {
                summary[key] = value;
            }

            suffix = "-trealla";
        }
        else
        {
            var comparison = new StrategyComparison(full, Progress);
            comparison.Reference();
            comparison.TrackerCost();
            comparison.CommitLatency();
            comparison.StoreBarrierCommit();
            comparison.ReplicaCreation();
            comparison.ResetCost();
            comparison.Footprint();
            rows = comparison.Rows;
            summary = Summary(rows);
            suffix = "";
        }

        var table = new Table().AddColumns("measure", "strategy", "tracker/mode", "MiB", "replicas", "pages", "median", "private", "Pss", "note");
        foreach (Row r in rows)
        {
            table.AddRow(r.Measure, r.Strategy, r.Tracker, r.SizeMiB.ToString(CultureInfo.InvariantCulture), r.Replicas.ToString(CultureInfo.InvariantCulture),
                r.Pages.ToString(CultureInfo.InvariantCulture), Value(r), Bytes(r.PrivateBytes), Bytes(r.PssBytes),
                Markup.Escape(r.Skipped ?? ""));
        }

        if (AnsiConsole.Profile.Width >= WideTable)
        {
            AnsiConsole.Write(table);
        }
        else
        {
            // Piped (Spectre then assumes 80 columns) or a narrow terminal: ten columns would wrap inside their cells.
            foreach (string line in Folded(rows, AnsiConsole.Profile.Width))
            {
                AnsiConsole.WriteLine(line);
            }
        }

        foreach ((string key, object? value) in summary)
        {
            AnsiConsole.MarkupLine($"[bold]{key}[/] = {Markup.Escape(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "n/a")}");
        }

        string command = "./run.sh" + (full ? " --full" : "") + (guest == "trealla" ? " --guest trealla" : "");
        // Merged, not overwritten: the opt-in steps (runtime-variants, wabt-stock) add their own keys to the same file,
        // each with its own *_measured date, and a comparison run must not erase them.
        RuntimeVariantsProbe.MergeSummary(Path.Combine(outDir, $"summary{suffix}.json"), summary);
        File.WriteAllText(Path.Combine(outDir, $"latest{suffix}.md"), Markdown(rows, summary, command, guest == "trealla" ? TreallaPlots : DefaultPlots));
        if (guest == "trealla")
        {
            WriteTreallaPlot(rows, outDir);
        }
        else
        {
            WritePlots(rows, outDir);
        }

        AnsiConsole.MarkupLine($"wrote {Markup.Escape(outDir)}/latest{suffix}.md, summary{suffix}.json and plots in {clock.Elapsed.TotalSeconds:F0} s");
        return 0;
    }

    /// <summary>The width below which the results table is folded (its ten columns need about this much).</summary>
    internal const int WideTable = 120;

    /// <summary>
    /// The rows for a narrow console: one record per group of lines — what and where, then the numbers — each line at most
    /// <paramref name="width"/> characters (a long note is wrapped at spaces, indented).
    /// </summary>
    internal static IEnumerable<string> Folded(IReadOnlyList<Row> rows, int width)
    {
        width = Math.Max(width, 40);
        foreach (Row r in rows)
        {
            yield return Fit($"{r.Measure} · {r.Strategy} · {r.Tracker}", width);
            var numbers = new List<string> { $"{r.SizeMiB} MiB", $"{r.Replicas} replicas", $"{r.Pages} pages" };
            if (Value(r) is { Length: > 0 } value)
            {
                numbers.Add(value);
            }

            if (r.PrivateBytes is not null)
            {
                numbers.Add($"private {Bytes(r.PrivateBytes)}");
            }

            if (r.PssBytes is not null)
            {
                numbers.Add($"Pss {Bytes(r.PssBytes)}");
            }

            foreach (string line in Wrap(string.Join(", ", numbers), width, "    "))
            {
                yield return line;
            }

            if (r.Skipped is { Length: > 0 } note)
            {
                foreach (string line in Wrap(note, width, "    note: "))
                {
                    yield return line;
                }
            }
        }
    }

    private static string Fit(string line, int width) => line.Length <= width ? line : line[..(width - 1)] + "…";

    /// <summary>Wraps <paramref name="text"/> at spaces into lines of at most <paramref name="width"/>, each after <paramref name="indent"/>.</summary>
    private static IEnumerable<string> Wrap(string text, int width, string indent)
    {
        string pad = new(' ', indent.Length);
        string prefix = indent;
        var line = new System.Text.StringBuilder();
        foreach (string word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && prefix.Length + line.Length + 1 + word.Length > width)
            {
                yield return Fit(prefix + line, width);
                line.Clear();
                prefix = pad;
            }

            line.Append(line.Length > 0 ? " " : "").Append(word);
        }

        if (line.Length > 0)
        {
            yield return Fit(prefix + line, width);
        }
    }

    private static readonly string[] DefaultPlots =
        ["commit latency vs replicas](commit-vs-replicas.png", "footprint vs replicas](footprint-vs-replicas.png", "reset cost vs pages scribbled](reset-vs-scribbled.png"];

    private static readonly string[] TreallaPlots = ["Trealla write latency vs replicas](trealla-write-vs-replicas.png"];

    private static Dictionary<string, object?> TreallaSummary(List<Row> rows)
    {
        double? Write(string strategy, int replicas) => rows.FirstOrDefault(r => r.Measure == "trealla write" && r.Strategy == strategy &&
            r.Replicas == replicas)?.Time?.TotalMicroseconds;
        return new Dictionary<string, object?>
        {
            ["trealla_write_ratio_fullcopy_vs_sharedbase_16"] = Ratio(Write("FullCopy", 16), Write("SharedBase", 16)),
            ["trealla_sharedbase_write_16_vs_1"] = Ratio(Write("SharedBase", 16), Write("SharedBase", 1)),
            ["trealla_sharedbase_footprint_16_bytes"] = rows.FirstOrDefault(r => r is { Measure: "trealla footprint", Strategy: "SharedBase", Replicas: 16 })?.PrivateBytes,
            ["trealla_fullcopy_footprint_16_bytes"] = rows.FirstOrDefault(r => r is { Measure: "trealla footprint", Strategy: "FullCopy", Replicas: 16 })?.PrivateBytes,
            ["machine"] = Machine(),
            ["date"] = Date(),
            ["git_revision"] = GitRevision(),
        };
    }

    private static void WriteTreallaPlot(List<Row> rows, string outDir)
    {
        var chart = new LineChart { Title = "Trealla: assertz + commit", XLabel = "replicas", YLabel = "median write (µs)", LogX = true, LogY = true };
        foreach (var group in rows.Where(r => r.Measure == "trealla write").GroupBy(r => r.Strategy))
        {
            chart.Series.Add(new ChartSeries(group.Key, group.Select(r => ((double)r.Replicas, r.Time!.Value.TotalMicroseconds)).ToList()));
        }

        chart.Save(outDir, "trealla-write-vs-replicas");
    }

    private static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? Math.Round(x / y, 2) : null;

    private static string Machine() => $"{Environment.ProcessorCount} CPUs, {Environment.OSVersion.VersionString}, .NET {Environment.Version}";

    private static string Date() => DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private static Dictionary<string, object?> Summary(List<Row> rows)
    {
        double? Commit(string strategy, int replicas) => rows.FirstOrDefault(r => r is { Measure: "commit", SizeMiB: 256, Pages: 16 } &&
            r.Tracker != "StoreBarrier" && r.Strategy == strategy && r.Replicas == replicas && r.Time is not null)?.Time!.Value.TotalMicroseconds;
        double? BarrierCommit(long size) => rows.FirstOrDefault(r => r is { Measure: "commit", Tracker: "StoreBarrier", Pages: 16 } &&
            r.SizeMiB == size)?.Time?.TotalMicroseconds;
        double? Create(long size) => rows.FirstOrDefault(r => r is { Measure: "create", Tracker: "CowFile" } && r.SizeMiB == size)?.Time?.TotalMicroseconds;
        return new Dictionary<string, object?>
        {
            ["commit_ratio_fullcopy_vs_sharedbase"] = Ratio(Commit("FullCopy", 16), Commit("SharedBase", 16)),
            ["sharedbase_commit_64_vs_1"] = Ratio(Commit("SharedBase", 64), Commit("SharedBase", 1)),
            ["replica_create_1g_vs_16m"] = Ratio(Create(1024), Create(16)),
            ["footprint_64x1g_bytes"] = rows.FirstOrDefault(r => r is { Measure: "footprint", Replicas: 64 })?.PrivateBytes,
            ["storebarrier_commit_1g_vs_16m"] = Ratio(BarrierCommit(1024), BarrierCommit(16)),
            ["machine"] = Machine(),
            ["date"] = Date(),
            ["git_revision"] = GitRevision(),
        };
    }

    private static string Markdown(List<Row> rows, Dictionary<string, object?> summary, string command, string[] plots)
    {
        var md = new StringBuilder();
        md.AppendLine("# Strategy comparison — latest run").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Written by `{command}` (bench `compare`). Medians of repeated samples in one process, after a warm-up;")
            .AppendLine("first-touch page faults happen in untimed preparation. One run: quote ratios, not absolute numbers.").AppendLine();
        foreach ((string key, object? value) in summary)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- `{key}`: {Convert.ToString(value, CultureInfo.InvariantCulture) ?? "n/a"}");
        }

        md.AppendLine().AppendLine("| measure | strategy | tracker/mode | MiB | replicas | pages | median | private | Pss | note |")
            .AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (Row r in rows)
        {
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Measure} | {r.Strategy} | {r.Tracker} | {r.SizeMiB} | {r.Replicas} | {r.Pages} | {Value(r)} | {Bytes(r.PrivateBytes)} | {Bytes(r.PssBytes)} | {r.Skipped} |");
        }

        md.AppendLine();
        foreach (string plot in plots)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"![{plot})");
        }

        return md.ToString();
    }

    private static void WritePlots(List<Row> rows, string outDir)
    {
        var commit = new LineChart { Title = "Commit latency, 256 MiB, 16 dirty pages", XLabel = "replicas", YLabel = "median commit (µs)", LogX = true, LogY = true };
        foreach (var group in rows.Where(r => r is { Measure: "commit", SizeMiB: 256, Pages: 16 } && r.Tracker != "StoreBarrier").GroupBy(r => r.Strategy))
        {
            commit.Series.Add(new ChartSeries(group.Key, group.Select(r => ((double)r.Replicas, r.Time?.TotalMicroseconds ?? double.NaN)).ToList()));
        }

        var footprint = new LineChart { Title = "Private memory of replicas (1 GiB, 1 % dirtied each)", XLabel = "replicas", YLabel = "MiB", LogX = true };
        footprint.Series.Add(new ChartSeries("SharedBase Private_Dirty",
            rows.Where(r => r.Measure == "footprint").Select(r => ((double)r.Replicas, (r.PrivateBytes ?? 0) / 1048576.0)).ToList()));
        var reset = new LineChart { Title = "Replica reset, 256 MiB", XLabel = "pages scribbled", YLabel = "median reset (µs)", LogX = true, LogY = true };
        foreach (var group in rows.Where(r => r.Measure == "reset").GroupBy(r => r.Tracker))
        {
            reset.Series.Add(new ChartSeries(group.Key, group.Select(r => ((double)r.Pages, r.Time!.Value.TotalMicroseconds)).ToList()));
        }

        commit.Save(outDir, "commit-vs-replicas");
        footprint.Save(outDir, "footprint-vs-replicas");
        reset.Save(outDir, "reset-vs-scribbled");
    }

    /// <summary>The median, followed for per-page and per-call rows by the nanoseconds per unit.</summary>
    private static string Value(Row r)
    {
        string median = r.Time is { } t ? Measure.Format(t) : "";
        return r.Nanoseconds switch
        {
            null => median,
            double ns when r.Measure == "syscall" => $"{ns:N0} ns/call",
            double ns => $"{median} ({ns:N1} ns/page)",
        };
    }

    private static string Bytes(long? bytes) => bytes is { } b ? $"{b / 1048576.0:N1} MiB" : "";

    internal static string GitRevision()
    {
        try
        {
            using Process git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string revision = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? revision : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown (git not found)";
        }
    }
}
