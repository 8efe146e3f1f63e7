using System.Diagnostics;
using CowWasm.Pool.Prolog;
using CowWasm.Pool.Wasm;

namespace CowWasm.Bench;

/// <summary>
/// <c>trealla-setup</c>: fetch, verify and compile the Trealla guest (cached), with progress.
/// <c>prolog [--consult TEXT] GOAL…</c>: run goals on a plain instance and print every answer with its latency.
/// </summary>
internal static class TreallaTool
{
    public static async Task<int> SetupAsync()
    {
        var clock = Stopwatch.StartNew();
        using WasmModule module = await TreallaGuest.LoadAsync(new ConsoleProgress()).ConfigureAwait(false);
        Artifact artifact = module.Artifact!; // loaded through the compiler, so it has one
        Console.WriteLine($"trealla ready in {clock.Elapsed.TotalSeconds:F1} s: {artifact.LibraryPath} " +
                          $"({artifact.LibraryBytes:N0} B, {(artifact.FromCache ? "cached" : $"compiled in {artifact.CompileTime.TotalSeconds:F0} s")})");
        return 0;
    }

    public static async Task<int> QueryAsync(string[] args)
    {
        using WasmModule module = await TreallaGuest.LoadAsync(new ConsoleProgress()).ConfigureAwait(false);
        using WasmInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--consult" && i + 1 < args.Length)
            {
                prolog.Consult(args[++i]);
                Console.WriteLine($"consulted {args[i]}");
                continue;
            }

            var clock = Stopwatch.StartNew();
            foreach (PrologAnswer answer in prolog.Query(args[i]))
            {
                Console.WriteLine($"{args[i]} -> {answer} [{answer.Kind}] output='{answer.Output}' ({clock.Elapsed.TotalMicroseconds:F0} us)");
                clock.Restart();
            }
        }

        return 0;
    }

    private sealed class ConsoleProgress : IProgress<string>
    {
        public void Report(string value) => Console.Error.WriteLine($"[trealla] {value}");
    }
}

/// <summary><c>prolog-pool GOAL ROUNDS</c>: where a replica query's time goes (memory growth, reset).</summary>
internal static class TreallaPoolProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        using WasmModule module = await TreallaGuest.LoadAsync().ConfigureAwait(false);
        await using PrologPool pool = PrologPool.Create(module, new CowWasm.Pool.Pooling.PoolOptions
        {
            ReplicaCount = 1,
            Sync = new CowWasm.Memory.SyncOptions
            {
                ResetMode = Enum.Parse<CowWasm.Memory.ReplicaResetMode>(args.Length > 2 ? args[2] : "KeepResident"),
                ReplicaTracker = args.Length > 4 ? Enum.Parse<CowWasm.Memory.TrackerKind>(args[4]) : null,
            },
            Instance = TreallaGuest.DefaultInstanceOptions,
        });
        await pool.ConsultAsync("test(123).").ConfigureAwait(false);
        for (int w = 0; w < int.Parse(args.Length > 3 ? args[3] : "0", System.Globalization.CultureInfo.InvariantCulture); w++)
        {
            await pool.ExecuteAsync(args[0]).ConfigureAwait(false); // the committed state has run the query before
        }

        int rounds = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            long private_ = 0;
            (long before, long after, double queryUs) = await pool.ReadAsync(p =>
            {
                long size = p.Guest.MemorySize;
                var q = Stopwatch.StartNew();
                p.QueryOnce(args[0]);
                double us = q.Elapsed.TotalMicroseconds;
                if (p.Guest.Memory is CowWasm.Memory.CowView view)
                {
                    var runs = new List<CowWasm.Memory.PageRun>();
                    view.CollectPrivatePages(runs);
                    private_ = runs.Sum(r => r.PageCount);
                }

                return (size, p.Guest.MemorySize, us);
            }).ConfigureAwait(false);
            if (i < 3 || i == rounds - 1)
            {
                Console.WriteLine($"#{i}: private pages {private_}, total {clock.Elapsed.TotalMicroseconds:F0} us, query {queryUs:F0} us, memory {before:N0} -> {after:N0} B, committed {pool.Pool.Strategy.CommittedPageCount} pages");
            }
        }

        return 0;
    }
}
