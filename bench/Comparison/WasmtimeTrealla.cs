using System.Diagnostics;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasmtime;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// Trealla on the Wasmtime backend, for <c>./run.sh --guest trealla</c> (keys <c>wasmtime_*</c> and
/// <c>native_vs_wasmtime_*</c> in summary-trealla.json): start-up from a fresh and from a warm compiled-code cache, the
/// seed workload (<see cref="TreallaSeed"/> with the prefix <c>wasmtime_</c>), a write with 16 replicas as the Go pool
/// does it (full copy) and as ours (shared base), Wasmtime-style isolation (a fresh instance per request) against a
/// replica read, and plain-instance speed against the native runtime.
/// </summary>
internal sealed class WasmtimeTrealla(Action<string> progress)
{
    public Dictionary<string, object?> Summary { get; } = [];

    /// <summary>
    /// <c>bench wasmtime-trealla [--out DIR]</c>: only this part (the native guest must be compiled already or is compiled
    /// now); merges the keys into DIR/summary-trealla.json (default docs/results) and prints them.
    /// </summary>
    public static async Task<int> RunAloneAsync(string[] args)
    {
        string results = args is ["--out", var dir, ..] ? dir : Path.Combine("docs", "results");
        var clock = Stopwatch.StartNew();
        var bench = new WasmtimeTrealla(m => Console.WriteLine($"{clock.Elapsed:mm\\:ss} {m}"));
        using WasmModule native = await TreallaGuest.LoadAsync().ConfigureAwait(false);
        await bench.RunAsync(native).ConfigureAwait(false);
        foreach ((string key, object? value) in bench.Summary)
        {
            Console.WriteLine($"{key} = {value}");
        }

        Directory.CreateDirectory(results);
        RuntimeVariantsProbe.MergeSummary(Path.Combine(results, "summary-trealla.json"), bench.Summary);
        return 0;
    }

    public async Task RunAsync(IGuestModule native)
    {
        byte[] wasm = await File.ReadAllBytesAsync(await TreallaPackage.FetchAsync().ConfigureAwait(false)).ConfigureAwait(false);
        string cache = Path.Combine(Path.GetTempPath(), $"cowwasm-wasmtime-bench-{Environment.ProcessId}");
        try
        {
            progress("wasmtime: first start (empty compiled-code cache: rewrite + Cranelift compile + first answer)");
            Summary["wasmtime_trealla_first_start_s"] = Math.Round(FirstAnswer(wasm, cache).TotalSeconds, 2);
            progress("wasmtime: start from the compiled-code cache");
            Summary["wasmtime_trealla_cached_start_ms"] = Math.Round(FirstAnswer(wasm, cache).TotalMilliseconds, 1);

            using WasmtimeModule module = WasmtimeModule.Load(wasm, new WasmtimeOptions { CacheDirectory = cache });
            using WasmtimeModule unbarriered = WasmtimeModule.Load(wasm, new WasmtimeOptions { CacheDirectory = cache, StoreBarrier = false });
            Summary["wasmtime_barrier_stores_marked"] = module.Report.Stores;
            var seed = new TreallaSeed(module, unbarriered, progress, "wasmtime_");
            await seed.RunAsync(rounds: 30, stressRounds: 200).ConfigureAwait(false);
            foreach ((string key, object? value) in seed.Summary)
            {
                if (key != "processor_count")
                {
                    Summary[key] = value;
                }
            }

            await WriteRatioAsync(module).ConfigureAwait(false);
            await InstancePerRequestAsync(module).ConfigureAwait(false);
            string stock = await WabtStockBench.BuildAsync(wasm).ConfigureAwait(false);
            await NativeVsWasmtimeVsStockAsync(native, module, unbarriered, stock).ConfigureAwait(false);
        }
        finally
        {
            if (Directory.Exists(cache))
            {
                Directory.Delete(cache, recursive: true);
            }
        }
    }

    /// <summary>Load (compile or cache hit) → plain instance → interpreter → the first answer.</summary>
    private static TimeSpan FirstAnswer(byte[] wasm, string cache)
    {
        long start = Stopwatch.GetTimestamp();
        using WasmtimeModule module = WasmtimeModule.Load(wasm, new WasmtimeOptions { CacheDirectory = cache });
        using IGuestInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        TreallaSeed.Check(PrologInterpreter.Initialize(guest).QueryOnce("X = 123"));
        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary><c>assertz</c> + commit into 16 replicas: the Go pool's full copy ÷ our shared base, both on Wasmtime.</summary>
    private async Task WriteRatioAsync(IGuestModule module)
    {
        progress("wasmtime: assertz + commit with 16 replicas, full copy vs shared base");
        var medians = new Dictionary<SyncStrategyKind, double>();
        foreach (SyncStrategyKind strategy in new[] { SyncStrategyKind.FullCopy, SyncStrategyKind.SharedBase })
        {
            await using PrologPool pool = PrologPool.Create(module, Trealla.Options(16, strategy));
            Trealla.WarmUp(pool, "true");
            int n = 0;
            for (int i = 0; i < 3; i++)
            {
                await pool.AssertAsync($"w({++n})").ConfigureAwait(false);
            }

            var times = new List<double>();
            for (int i = 0; i < (strategy == SyncStrategyKind.FullCopy ? 9 : 31); i++)
            {
                int k = ++n;
                times.Add(await TreallaSeed.TimeAsync(async () => await pool.AssertAsync($"w({k})").ConfigureAwait(false)).ConfigureAwait(false));
            }

            medians[strategy] = TreallaSeed.Median(times);
        }

        Summary["wasmtime_write_fullcopy16_us"] = Math.Round(medians[SyncStrategyKind.FullCopy] * 1000, 1);
        Summary["wasmtime_write_sharedbase16_us"] = Math.Round(medians[SyncStrategyKind.SharedBase] * 1000, 1);
        Summary["wasmtime_write_ratio_fullcopy_vs_sharedbase_16"] =
            Math.Round(medians[SyncStrategyKind.FullCopy] / medians[SyncStrategyKind.SharedBase], 1);
    }

    /// <summary>
    /// Isolation the Wasmtime way: a fresh instance per request (instantiate, init, consult, query, dispose) against a
    /// read on one of our replicas (reset included). The fresh instance is ours (memory from a standalone memory-engine
    /// memory), not Wasmtime's pooling allocator, which cannot be combined with a host memory creator; the consult
    /// dominates its cost either way.
    /// </summary>
    private async Task InstancePerRequestAsync(IGuestModule module)
    {
        progress("wasmtime: a fresh instance per request vs a replica read");
        await using PrologPool pool = PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 2 });
        await pool.ConsultAsync("test(123).").ConfigureAwait(false);
        Trealla.WarmUp(pool, "test(X)");
        Linker linker = TreallaGuest.CreateLinker(module.Info);
        var fresh = new List<double>();
        var replica = new List<double>();
        for (int i = 0; i < 30; i++)
        {
            fresh.Add(await TreallaSeed.TimeAsync(() =>
            {
                using IGuestInstance guest = module.Instantiate(linker, TreallaGuest.DefaultInstanceOptions);
                PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
                prolog.Consult("test(123).");
                TreallaSeed.Check(prolog.QueryOnce("test(X)"));
                return Task.CompletedTask;
            }).ConfigureAwait(false));
            replica.Add(await TreallaSeed.TimeAsync(async () => TreallaSeed.Check(await pool.QueryOnceAsync("test(X)").ConfigureAwait(false))).ConfigureAwait(false));
        }

        Summary["wasmtime_instance_per_request_us"] = Math.Round(TreallaSeed.Median(fresh) * 1000, 1);
        Summary["wasmtime_instance_per_request_vs_pool_read"] = Math.Round(TreallaSeed.Median(fresh) / TreallaSeed.Median(replica), 1);
    }

    /// <summary>
    /// Plain instances, interleaved blocks: <c>test(X)</c> and 8-queens on our runtime, on Wasmtime (with and without
    /// the barrier) and on wabt's stock runtime (the same wasm2c C with wasm-rt-impl.c, in a C program started once per
    /// block): our runtime's time ÷ Wasmtime's (<c>native_vs_wasmtime_*</c>) and ÷ stock's (<c>runtime_vs_wabt_stock_*</c>),
    /// all from the same blocks of the same run.
    /// </summary>
    private async Task NativeVsWasmtimeVsStockAsync(IGuestModule native, IGuestModule wasmtime, IGuestModule wasmtimeWithoutBarrier, string stock)
    {
        progress("runtimes: plain test(X) and 8-queens on ours, Wasmtime and wabt's stock runtime (interleaved blocks)");
        string program = Path.Combine(Path.GetTempPath(), $"cowwasm-queens-{Environment.ProcessId}.pl");
        await File.WriteAllTextAsync(program, RuntimeVariantsProbe.QueensProgram).ConfigureAwait(false);
        (IGuestInstance n, PrologInterpreter nativeProlog) = Trealla.WarmPlain(native);
        (IGuestInstance w, PrologInterpreter wasmtimeProlog) = Trealla.WarmPlain(wasmtime);
        (IGuestInstance u, PrologInterpreter unbarrieredProlog) = Trealla.WarmPlain(wasmtimeWithoutBarrier);
        using (n)
        using (w)
        using (u)
        {
            nativeProlog.Consult(RuntimeVariantsProbe.QueensProgram);
            wasmtimeProlog.Consult(RuntimeVariantsProbe.QueensProgram);
            unbarrieredProlog.Consult(RuntimeVariantsProbe.QueensProgram);
            var testx = (Native: new List<double>(), Wasmtime: new List<double>(), Stock: new List<double>());
            var queens = (Native: new List<double>(), Wasmtime: new List<double>(), Unbarriered: new List<double>(), Stock: new List<double>());
            try
            {
                for (int block = 0; block < 9; block++)
                {
                    testx.Native.Add(Block(nativeProlog, "test(X)", 200));
                    testx.Wasmtime.Add(Block(wasmtimeProlog, "test(X)", 200));
                    queens.Native.Add(Block(nativeProlog, RuntimeVariantsProbe.QueensGoal, 3));
                    queens.Wasmtime.Add(Block(wasmtimeProlog, RuntimeVariantsProbe.QueensGoal, 3));
                    queens.Unbarriered.Add(Block(unbarrieredProlog, RuntimeVariantsProbe.QueensGoal, 3));
                    // The stock program's block: the same 200 test(X) and 3 × 8-queens, timed inside it (its start-up is not).
                    (double stockTestxUs, double stockQueensMs) = Assert1(await WabtStockBench.RunStockAsync(stock, program, 1, 200, 3).ConfigureAwait(false));
                    testx.Stock.Add(stockTestxUs / 1000);
                    queens.Stock.Add(stockQueensMs);
                }
            }
            finally
            {
                File.Delete(program);
            }

            Summary["trealla_testx_plain_us"] = Math.Round(TreallaSeed.Median(testx.Native) * 1000, 1);
            Summary["wabt_stock_testx_us"] = Math.Round(TreallaSeed.Median(testx.Stock) * 1000, 1);
            Summary["wabt_stock_queens8_ms"] = Math.Round(TreallaSeed.Median(queens.Stock), 2);
            Summary["runtime_vs_wabt_stock_testx"] = Math.Round(TreallaSeed.Median(testx.Native) / TreallaSeed.Median(testx.Stock), 3);
            Summary["runtime_vs_wabt_stock_queens8"] = Math.Round(TreallaSeed.Median(queens.Native) / TreallaSeed.Median(queens.Stock), 3);
            Summary["wabt_stock_measured"] = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, interleaved with ours and Wasmtime (./run.sh --guest trealla)";

            Summary["wasmtime_queens8_nobarrier_ms"] = Math.Round(TreallaSeed.Median(queens.Unbarriered), 1);

            Summary["native_testx_plain_us"] = Math.Round(TreallaSeed.Median(testx.Native) * 1000, 1);
            Summary["wasmtime_testx_plain_us"] = Math.Round(TreallaSeed.Median(testx.Wasmtime) * 1000, 1);
            Summary["native_vs_wasmtime_testx"] = Math.Round(TreallaSeed.Median(testx.Native) / TreallaSeed.Median(testx.Wasmtime), 2);
            Summary["native_queens8_ms"] = Math.Round(TreallaSeed.Median(queens.Native), 1);
            Summary["wasmtime_queens8_ms"] = Math.Round(TreallaSeed.Median(queens.Wasmtime), 1);
            Summary["native_vs_wasmtime_queens8"] = Math.Round(TreallaSeed.Median(queens.Native) / TreallaSeed.Median(queens.Wasmtime), 2);
        }

        static (double, double) Assert1(List<(double TestxUs, double QueensMs)> blocks) =>
            blocks is [var only] ? only : throw new InvalidOperationException($"the stock program reported {blocks.Count} blocks, not 1");

        static double Block(PrologInterpreter prolog, string goal, int count)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                PrologAnswer answer = prolog.QueryOnce(goal);
                if (!answer.IsSuccess)
                {
                    throw new InvalidOperationException($"{goal} failed: {answer}");
                }
            }

            return Stopwatch.GetElapsedTime(start).TotalMilliseconds / count;
        }
    }
}
