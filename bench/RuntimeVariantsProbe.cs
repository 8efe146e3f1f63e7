using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CowWasm.Bench.Comparison;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// <c>runtime-variants [BLOCKS]</c> (opt-in: compiles Trealla three more times, ~10 min each the first time): a plain-instance
/// <c>test(X)</c> and the CPU-heavy 8-queens (all 92 solutions) on Trealla built four ways — the default (guard pages,
/// loop interrupt polls, -fsignaling-nans), without loop polls, with software bounds checks, and without
/// -fsignaling-nans — in interleaved blocks on one thread. Reports the medians and what each costs; merges the ratios into
/// docs/results/summary-trealla.json and writes docs/results/runtime-variants.md.
/// </summary>
internal static class RuntimeVariantsProbe
{
    /// <summary>8-queens, all solutions, by select-and-check (the same program the wabt stock driver runs).</summary>
    public const string QueensProgram = """
        queens(N, Qs) :- numlist(1, N, Ns), place(Ns, [], Qs).
        place([], Qs, Qs).
        place(Unplaced, Safe, Qs) :- select(Q, Unplaced, Rest), \+ attacks(Q, Safe, 1), place(Rest, [Q|Safe], Qs).
        attacks(Q, [Q1|_], D) :- Q =:= Q1 + D.
        attacks(Q, [Q1|_], D) :- Q =:= Q1 - D.
        attacks(Q, [_|Qs], D) :- D1 is D + 1, attacks(Q, Qs, D1).
        test(123).
        """;

    public const string QueensGoal = "findall(Q, queens(8, Q), L), length(L, N)";

    public static async Task<int> RunAsync(string[] args)
    {
        int blocks = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 15;
        var variants = new (string Name, ArtifactOptions Options)[]
        {
            ("default (guard pages, loop polls)", new ArtifactOptions()),
            ("no loop polls", new ArtifactOptions { LoopInterruptChecks = false }),
            ("software bounds checks", new ArtifactOptions { BoundsChecks = BoundsChecks.Software }),
            ("no -fsignaling-nans", new ArtifactOptions { SignalingNans = false }),
        };
        var loaded = new List<(string Name, WasmModule Module, WasmInstance Guest, PrologInterpreter Prolog)>();
        try
        {
            foreach ((string name, ArtifactOptions options) in variants)
            {
                Console.WriteLine($"loading Trealla: {name} (first use compiles it)");
                WasmModule module = await TreallaGuest.LoadAsync(options, new Progress<string>(Console.WriteLine)).ConfigureAwait(false);
                WasmInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
                PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
                prolog.Consult(QueensProgram);
                CheckSuccess(prolog.QueryOnce(QueensGoal));
                loaded.Add((name, module, guest, prolog));
            }

            var testx = loaded.Select(_ => new List<double>()).ToArray();
            var queens = loaded.Select(_ => new List<double>()).ToArray();
            for (int block = 0; block < blocks; block++)
            {
                for (int v = 0; v < loaded.Count; v++)
                {
                    testx[v].Add(Block(loaded[v].Prolog, "test(X)", 200));
                    queens[v].Add(Block(loaded[v].Prolog, QueensGoal, 3));
                }
            }

            double[] testxMedian = [.. testx.Select(TreallaSeed.Median)];
            double[] queensMedian = [.. queens.Select(TreallaSeed.Median)];
            var report = new StringBuilder();
            report.AppendLine(CultureInfo.InvariantCulture, $"# Trealla on four runtime builds ({DateTime.UtcNow:yyyy-MM-dd}, {Environment.ProcessorCount} CPUs)");
            report.AppendLine();
            report.AppendLine($"`dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll runtime-variants {blocks}`: plain instances, one thread, " +
                              $"{blocks} interleaved blocks (200 `test(X)` / 3 × 8-queens all solutions each); medians of the blocks.");
            report.AppendLine();
            report.AppendLine("| build | test(X) µs | 8-queens ms |");
            report.AppendLine("|---|---:|---:|");
            for (int v = 0; v < loaded.Count; v++)
            {
                report.AppendLine(CultureInfo.InvariantCulture, $"| {loaded[v].Name} | {testxMedian[v] * 1000:F1} | {queensMedian[v]:F2} |");
            }

            var keys = new Dictionary<string, object?>
            {
                ["trealla_testx_plain_us"] = Math.Round(testxMedian[0] * 1000, 1),
                ["trealla_queens8_plain_ms"] = Math.Round(queensMedian[0], 2),
                ["loop_poll_cost_testx"] = Math.Round(testxMedian[0] / testxMedian[1], 3),
                ["loop_poll_cost_queens8"] = Math.Round(queensMedian[0] / queensMedian[1], 3),
                ["guard_vs_software_testx"] = Math.Round(testxMedian[0] / testxMedian[2], 3),
                ["guard_vs_software_queens8"] = Math.Round(queensMedian[0] / queensMedian[2], 3),
                ["signaling_nans_cost_testx"] = Math.Round(testxMedian[0] / testxMedian[3], 3),
                ["signaling_nans_cost_queens8"] = Math.Round(queensMedian[0] / queensMedian[3], 3),
                ["runtime_variants_measured"] = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {blocks} blocks",
            };
            report.AppendLine();
            foreach ((string key, object? value) in keys)
            {
                report.AppendLine(CultureInfo.InvariantCulture, $"- `{key}` = {value}");
            }

            Console.Write(report);
            string results = Path.Combine(RepoRoot(), "docs", "results");
            Directory.CreateDirectory(results);
            File.WriteAllText(Path.Combine(results, "runtime-variants.md"), report.ToString());
            MergeSummary(Path.Combine(results, "summary-trealla.json"), keys);
            return 0;
        }
        finally
        {
            foreach ((_, WasmModule module, WasmInstance guest, _) in loaded)
            {
                guest.Dispose();
                module.Dispose();
            }
        }
    }

    /// <summary>Throws unless the answer is a success (the 8-queens goal must find its 92 solutions).</summary>
    internal static void CheckSuccess(PrologAnswer answer)
    {
        if (!answer.IsSuccess || (answer.Bindings.TryGetValue("N", out PrologTerm? n) && !n.Equals(PrologTerm.Integer(92))))
        {
            throw new InvalidOperationException($"Unexpected answer: {answer}");
        }
    }

    /// <summary>Milliseconds per query, over <paramref name="count"/> queries.</summary>
    internal static double Block(PrologInterpreter prolog, string goal, int count)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < count; i++)
        {
            CheckSuccess(prolog.QueryOnce(goal));
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds / count;
    }

    /// <summary>Adds or replaces <paramref name="keys"/> in a summary JSON object, keeping its other keys.</summary>
    internal static void MergeSummary(string path, Dictionary<string, object?> keys)
    {
        var merged = File.Exists(path)
            ? JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(path))!
                .ToDictionary(kv => kv.Key, kv => (object?)kv.Value)
            : [];
        foreach ((string key, object? value) in keys)
        {
            merged[key] = value;
        }

        File.WriteAllText(path, JsonSerializer.Serialize(merged, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    internal static string RepoRoot()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "CowWasm.sln")))
            {
                return dir;
            }
        }

        return Environment.CurrentDirectory;
    }
}
