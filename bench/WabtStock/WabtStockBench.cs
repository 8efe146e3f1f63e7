using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using CowWasm.Bench.Comparison;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// <c>wabt-stock [ROUNDS | --build-only]</c> (compiles Trealla once more, about a minute, cached afterwards): the same Trealla
/// query loop on wabt 1.0.32's own runtime (wasm-rt-impl.c with its guard pages and signal handler, in a standalone C
/// program, <c>WabtStock/stock-driver.c</c>) and on ours (a plain instance of the default build, in this process).
/// ROUNDS alternations of 5 blocks each way; per block 200 <c>test(X)</c> and 3 × 8-queens (all solutions). Writes the
/// medians and the ratios ours ÷ stock (<c>runtime_vs_wabt_stock_testx</c>, <c>runtime_vs_wabt_stock_queens8</c>) to
/// docs/results/summary-trealla.json and docs/results/wabt-stock.md.
/// </summary>
internal static partial class WabtStockBench
{
    private const int TestxPerBlock = 200;
    private const int QueensPerBlock = 3;
    private const int BlocksPerTurn = 5;

    public static async Task<int> RunAsync(string[] args)
    {
        bool buildOnly = args is ["--build-only"];
        int rounds = args.Length > 0 && !buildOnly ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        string wasmPath = await TreallaPackage.FetchAsync(progress: new Progress<string>(Console.WriteLine)).ConfigureAwait(false);
        string stock = await BuildAsync(await File.ReadAllBytesAsync(wasmPath).ConfigureAwait(false)).ConfigureAwait(false);
        if (buildOnly)
        {
            Console.WriteLine($"wabt-stock: built {stock}");
            return 0;
        }

        string program = Path.Combine(Path.GetTempPath(), $"cowwasm-queens-{Environment.ProcessId}.pl");
        await File.WriteAllTextAsync(program, RuntimeVariantsProbe.QueensProgram).ConfigureAwait(false);

        using WasmModule module = await TreallaGuest.LoadAsync(new Progress<string>(Console.WriteLine)).ConfigureAwait(false);
        using WasmInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
        prolog.Consult(RuntimeVariantsProbe.QueensProgram);
        RuntimeVariantsProbe.CheckSuccess(prolog.QueryOnce(RuntimeVariantsProbe.QueensGoal));

        var ours = (Testx: new List<double>(), Queens: new List<double>());
        var theirs = (Testx: new List<double>(), Queens: new List<double>());
        try
        {
            for (int round = 0; round < rounds; round++)
            {
                Console.WriteLine($"round {round + 1}/{rounds}: {BlocksPerTurn} blocks on ours, then {BlocksPerTurn} on wabt's stock runtime");
                for (int block = 0; block < BlocksPerTurn; block++)
                {
                    ours.Testx.Add(RuntimeVariantsProbe.Block(prolog, "test(X)", TestxPerBlock) * 1000);
                    ours.Queens.Add(RuntimeVariantsProbe.Block(prolog, RuntimeVariantsProbe.QueensGoal, QueensPerBlock));
                }

                foreach ((double testx, double queens) in await RunStockAsync(stock, program).ConfigureAwait(false))
                {
                    theirs.Testx.Add(testx);
                    theirs.Queens.Add(queens);
                }
            }
        }
        finally
        {
            File.Delete(program);
        }

        double oursTestx = TreallaSeed.Median(ours.Testx), stockTestx = TreallaSeed.Median(theirs.Testx);
        double oursQueens = TreallaSeed.Median(ours.Queens), stockQueens = TreallaSeed.Median(theirs.Queens);
        var keys = new Dictionary<string, object?>
        {
            ["runtime_testx_us"] = Math.Round(oursTestx, 1),
            ["wabt_stock_testx_us"] = Math.Round(stockTestx, 1),
            ["runtime_vs_wabt_stock_testx"] = Math.Round(oursTestx / stockTestx, 3),
            ["runtime_queens8_ms"] = Math.Round(oursQueens, 2),
            ["wabt_stock_queens8_ms"] = Math.Round(stockQueens, 2),
            ["runtime_vs_wabt_stock_queens8"] = Math.Round(oursQueens / stockQueens, 3),
            ["wabt_stock_measured"] = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {rounds} rounds",
        };
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"# Our runtime vs wabt 1.0.32's stock runtime on Trealla ({DateTime.UtcNow:yyyy-MM-dd}, {Environment.ProcessorCount} CPUs)");
        report.AppendLine();
        report.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"`dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll wabt-stock {rounds}`: one thread each, {rounds} alternations of " +
            $"{BlocksPerTurn} blocks (a block: {TestxPerBlock} `test(X)` and {QueensPerBlock} × `{RuntimeVariantsProbe.QueensGoal}`); medians of the blocks. ") +
            "Ours: a plain instance of the default build (guard pages, loop interrupt polls, store barrier, -fsignaling-nans) in the .NET " +
            "process, each export call through a trampoline. Stock: the same wasm through wasm2c and gcc -O2, linked with wasm-rt-impl.c " +
            "(guard pages, its own signal handler, no depth counting), one trap boundary per query, in a C program.");
        report.AppendLine();
        report.AppendLine("| runtime | test(X) µs | 8-queens ms |");
        report.AppendLine("|---|---:|---:|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| CowWasm (default build) | {oursTestx:F1} | {oursQueens:F2} |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| wabt 1.0.32 stock | {stockTestx:F1} | {stockQueens:F2} |");
        report.AppendLine();
        foreach ((string key, object? value) in keys)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"- `{key}` = {value}");
        }

        Console.Write(report);
        string results = Path.Combine(RuntimeVariantsProbe.RepoRoot(), "docs", "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, "wabt-stock.md"), report.ToString());
        RuntimeVariantsProbe.MergeSummary(Path.Combine(results, "summary-trealla.json"), keys);
        return 0;
    }

    private static Task<List<(double TestxUs, double QueensMs)>> RunStockAsync(string stock, string program) =>
        RunStockAsync(stock, program, BlocksPerTurn, TestxPerBlock, QueensPerBlock);

    /// <summary>
    /// Runs the stock program: <paramref name="blocks"/> blocks of <paramref name="testx"/> <c>test(X)</c> and
    /// <paramref name="queens"/> × 8-queens (the program's file holds the queens program); per block the µs per
    /// <c>test(X)</c> and the ms per 8-queens.
    /// </summary>
    internal static async Task<List<(double TestxUs, double QueensMs)>> RunStockAsync(string stock, string program, int blocks, int testx, int queens)
    {
        (int code, string output) = await ToolProcess.RunAsync(stock,
            [program, blocks.ToString(CultureInfo.InvariantCulture), testx.ToString(CultureInfo.InvariantCulture),
             queens.ToString(CultureInfo.InvariantCulture), RuntimeVariantsProbe.QueensGoal],
            Path.GetDirectoryName(stock)!, null, CancellationToken.None).ConfigureAwait(false);
        var lines = BlockLine().Matches(output)
            .Select(m => (double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .ToList();
        return code == 0 && lines.Count == blocks
            ? lines
            : throw new InvalidOperationException($"The wabt-stock driver failed (exit {code}): {output}");
    }

    /// <summary>
    /// The stock build's executable, compiled into the artifact cache on first use (wasm2c + gcc -O2, one translation
    /// unit as wabt documents it, about a minute). Only <c>init_memories</c> is changed: its run of segment loads becomes
    /// a table and a loop (<see cref="SourceSplitter.TableDrivenLoads"/>), as in our build — Trealla's 68,345 loads in one
    /// function took gcc -O2 about ten minutes and 9 GB; the loads, and every guest function, are unchanged.
    /// </summary>
    internal static async Task<string> BuildAsync(byte[] wasm)
    {
        byte[] driver = ReadResource("stock-driver.c");
        string impl = "/usr/share/wabt/wasm2c/wasm-rt-impl.c";
        if (!File.Exists(impl))
        {
            throw new FileNotFoundException("wabt's stock runtime is missing: apt-get install -y wabt", impl);
        }

        string key = Convert.ToHexStringLower(SHA256.HashData([.. wasm, .. driver, .. File.ReadAllBytes(impl), .. "|stock|-O2|tableloads"u8]))[..24];
        string root = Path.Combine(new ArtifactOptions().ResolveCacheDirectory(), "wabt-stock");
        string final = Path.Combine(root, key);
        string exe = Path.Combine(final, "stock-trealla");
        if (File.Exists(exe))
        {
            return exe;
        }

        string work = Path.Combine(root, $"tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(work, "trealla.wasm"), wasm).ConfigureAwait(false);
            await File.WriteAllBytesAsync(Path.Combine(work, "stock-driver.c"), driver).ConfigureAwait(false);
            File.Copy(impl, Path.Combine(work, "wasm-rt-impl.c"));
            File.Copy("/usr/share/wabt/wasm2c/wasm-rt-impl.h", Path.Combine(work, "wasm-rt-impl.h"));
            Console.WriteLine("wabt-stock: wasm2c");
            await Run(work, "wasm2c", "trealla.wasm", "-n", "tpl", "-o", "tpl.c").ConfigureAwait(false);
            string translated = await File.ReadAllTextAsync(Path.Combine(work, "tpl.c")).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(work, "tpl.c"), SourceSplitter.TableDrivenLoads(translated)).ConfigureAwait(false);
            Console.WriteLine("wabt-stock: gcc -O2 (about a minute)");
            await Run(work, "gcc", "-O2", "-I.", "-o", "stock-trealla", "tpl.c", "wasm-rt-impl.c", "stock-driver.c", "-lm").ConfigureAwait(false);
            File.Delete(Path.Combine(work, "tpl.c"));
            try
            {
                Directory.Move(work, final);
            }
            catch (IOException) when (File.Exists(exe))
            {
                // another process published it first
            }

            return exe;
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }

        static async Task Run(string directory, string tool, params string[] arguments)
        {
            var clock = Stopwatch.StartNew();
            (int code, string output) = await ToolProcess.RunAsync(tool, arguments, directory,
                _ => Console.WriteLine($"wabt-stock: {tool} still running ({clock.Elapsed.TotalSeconds:F0} s)"), CancellationToken.None).ConfigureAwait(false);
            if (code != 0)
            {
                throw new InvalidOperationException($"{tool} failed (exit {code}): {output}");
            }
        }
    }

    private static byte[] ReadResource(string name)
    {
        using Stream stream = typeof(WabtStockBench).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The bench lacks its embedded {name}.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    [GeneratedRegex(@"block \d+ testx_us ([0-9.]+) queens_ms ([0-9.]+)")]
    private static partial Regex BlockLine();
}
