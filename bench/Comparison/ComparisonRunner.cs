using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CowWasm.Bench.Reporting;
using Spectre.Console;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// <c>compare [--full] [--out DIR]</c>: the strategy comparison <c>./run.sh</c> runs. Prints a table and writes
/// <c>latest.md</c>, <c>summary.json</c> and SVG plots to DIR (default docs/results).
/// </summary>
internal static class ComparisonRunner
{
    public static int Run(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out")
            {
                i++;
            }
            else if (args[i] != "--full")
            {
                Console.Error.WriteLine($"compare: unknown option '{args[i]}'. Usage: compare [--full] [--out DIR]. " +
                                        "(--guest trealla is not implemented yet; the Trealla workload runs as the BenchmarkDotNet *Trealla* benchmarks.)");
                return 2;
            }
        }

        bool full = args.Contains("--full");
        int outIndex = Array.IndexOf(args, "--out");
        string outDir = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : Path.Combine("docs", "results");
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        var comparison = new StrategyComparison(full, message => AnsiConsole.MarkupLine($"[grey]{clock.Elapsed:mm\\:ss}[/] {Markup.Escape(message)}"));
        comparison.Reference();
        comparison.CommitLatency();
        comparison.ReplicaCreation();
        comparison.ResetCost();
        comparison.Footprint();
        List<Row> rows = comparison.Rows;

        var table = new Table().AddColumns("measure", "strategy", "tracker/mode", "MiB", "replicas", "pages", "median", "private", "Pss", "note");
        foreach (Row r in rows)
        {
            table.AddRow(r.Measure, r.Strategy, r.Tracker, r.SizeMiB.ToString(CultureInfo.InvariantCulture), r.Replicas.ToString(CultureInfo.InvariantCulture),
                r.Pages.ToString(CultureInfo.InvariantCulture), r.Time is { } t ? Measure.Format(t) : "", Bytes(r.PrivateBytes), Bytes(r.PssBytes),
                Markup.Escape(r.Skipped ?? ""));
        }

        AnsiConsole.Write(table);
        Dictionary<string, object?> summary = Summary(rows);
        foreach ((string key, object? value) in summary)
        {
            AnsiConsole.MarkupLine($"[bold]{key}[/] = {Markup.Escape(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "n/a")}");
        }

        File.WriteAllText(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllText(Path.Combine(outDir, "latest.md"), Markdown(rows, summary, full));
        WritePlots(rows, outDir);
        AnsiConsole.MarkupLine($"wrote {Markup.Escape(outDir)}/latest.md, summary.json and plots in {clock.Elapsed.TotalSeconds:F0} s");
        return 0;
    }

    private static Dictionary<string, object?> Summary(List<Row> rows)
    {
        double? Commit(string strategy, int replicas) => rows.FirstOrDefault(r => r is { Measure: "commit", SizeMiB: 256, Pages: 16 } &&
            r.Strategy == strategy && r.Replicas == replicas && r.Time is not null)?.Time!.Value.TotalMicroseconds;
        double? Create(long size) => rows.FirstOrDefault(r => r is { Measure: "create", Tracker: "CowFile" } && r.SizeMiB == size)?.Time?.TotalMicroseconds;
        double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? Math.Round(x / y, 2) : null;
        return new Dictionary<string, object?>
        {
            ["commit_ratio_fullcopy_vs_sharedbase"] = Ratio(Commit("FullCopy", 16), Commit("SharedBase", 16)),
            ["sharedbase_commit_64_vs_1"] = Ratio(Commit("SharedBase", 64), Commit("SharedBase", 1)),
            ["replica_create_1g_vs_16m"] = Ratio(Create(1024), Create(16)),
            ["footprint_64x1g_bytes"] = rows.FirstOrDefault(r => r is { Measure: "footprint", Replicas: 64 })?.PrivateBytes,
            ["machine"] = $"{Environment.ProcessorCount} CPUs, {Environment.OSVersion.VersionString}, .NET {Environment.Version}",
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            ["git_revision"] = GitRevision(),
        };
    }

    private static string Markdown(List<Row> rows, Dictionary<string, object?> summary, bool full)
    {
        var md = new StringBuilder();
        md.AppendLine("# Strategy comparison — latest run").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Written by `./run.sh{(full ? " --full" : "")}` (bench `compare`). Medians of repeated samples in one process, after a warm-up;")
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
                $"| {r.Measure} | {r.Strategy} | {r.Tracker} | {r.SizeMiB} | {r.Replicas} | {r.Pages} | {(r.Time is { } t ? Measure.Format(t) : "")} | {Bytes(r.PrivateBytes)} | {Bytes(r.PssBytes)} | {r.Skipped} |");
        }

        md.AppendLine().AppendLine("![commit latency vs replicas](commit-vs-replicas.svg)")
            .AppendLine("![footprint vs replicas](footprint-vs-replicas.svg)")
            .AppendLine("![reset cost vs pages scribbled](reset-vs-scribbled.svg)");
        return md.ToString();
    }

    private static void WritePlots(List<Row> rows, string outDir)
    {
        var commit = new SvgChart { Title = "Commit latency, 256 MiB, 16 dirty pages", XLabel = "replicas", YLabel = "median commit (µs)", LogX = true, LogY = true };
        foreach (var group in rows.Where(r => r is { Measure: "commit", SizeMiB: 256, Pages: 16 }).GroupBy(r => r.Strategy))
        {
            commit.Series.Add(new ChartSeries(group.Key, group.Select(r => ((double)r.Replicas, r.Time?.TotalMicroseconds ?? double.NaN)).ToList()));
        }

        var footprint = new SvgChart { Title = "Private memory of replicas (1 GiB, 1 % dirtied each)", XLabel = "replicas", YLabel = "MiB", LogX = true };
        footprint.Series.Add(new ChartSeries("SharedBase Private_Dirty",
            rows.Where(r => r.Measure == "footprint").Select(r => ((double)r.Replicas, (r.PrivateBytes ?? 0) / 1048576.0)).ToList()));
        var reset = new SvgChart { Title = "Replica reset, 256 MiB", XLabel = "pages scribbled", YLabel = "median reset (µs)", LogX = true, LogY = true };
        foreach (var group in rows.Where(r => r.Measure == "reset").GroupBy(r => r.Tracker))
        {
            reset.Series.Add(new ChartSeries(group.Key, group.Select(r => ((double)r.Pages, r.Time!.Value.TotalMicroseconds)).ToList()));
        }

        File.WriteAllText(Path.Combine(outDir, "commit-vs-replicas.svg"), commit.Render());
        File.WriteAllText(Path.Combine(outDir, "footprint-vs-replicas.svg"), footprint.Render());
        File.WriteAllText(Path.Combine(outDir, "reset-vs-scribbled.svg"), reset.Render());
    }

    private static string Bytes(long? bytes) => bytes is { } b ? $"{b / 1048576.0:N1} MiB" : "";

    private static string GitRevision()
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
