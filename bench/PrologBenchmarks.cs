using BenchmarkDotNet.Attributes;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>Loads the Trealla guest once per benchmark process (fetched and compiled by <c>trealla-setup</c>).</summary>
internal static class Trealla
{
    public static WasmModule Load() => TreallaGuest.LoadAsync().GetAwaiter().GetResult();

    /// <summary>
    /// <see cref="PrologPool.DefaultOptions"/> with the given replica count and, where given, strategy, replica reset,
    /// replica tracker (SharedBase only; private replicas keep the default) and isolation level.
    /// </summary>
    public static PoolOptions Options(int replicas, SyncStrategyKind? strategy = null, ReplicaResetMode? reset = null,
        TrackerKind? replicaTracker = null, ReadIsolation? isolation = null)
    {
        PoolOptions defaults = PrologPool.DefaultOptions;
        SyncStrategyKind kind = strategy ?? defaults.Sync.Strategy;
        return defaults with
        {
            ReplicaCount = replicas,
            Isolation = isolation ?? defaults.Isolation,
            Sync = defaults.Sync with
            {
                Strategy = kind,
                ResetMode = reset ?? defaults.Sync.ResetMode,
                ReplicaTracker = kind == SyncStrategyKind.SharedBase ? replicaTracker ?? defaults.Sync.ReplicaTracker : defaults.Sync.ReplicaTracker,
            },
        };
    }

    /// <summary>A pool with <see cref="Options"/>.</summary>
    public static PrologPool Pool(WasmModule module, int replicas, SyncStrategyKind? strategy = null, ReplicaResetMode? reset = null,
        TrackerKind? replicaTracker = null, ReadIsolation? isolation = null) =>
        PrologPool.Create(module, Options(replicas, strategy, reset, replicaTracker, isolation));

    /// <summary>A plain instance with <c>test(123).</c> consulted and a few queries run (its pages are hot).</summary>
    public static (IGuestInstance Guest, PrologInterpreter Prolog) WarmPlain(IGuestModule module)
    {
        IGuestInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
        prolog.Consult("test(123).");
        for (int i = 0; i < 10; i++)
        {
            prolog.QueryOnce("test(X)");
        }

        return (guest, prolog);
    }

    /// <summary>Runs a few queries on every replica so first-touch faults happen before measuring.</summary>
    public static void WarmUp(PrologPool pool, string goal)
    {
        for (int round = 0; round < 3; round++)
        {
            Task.WaitAll(Enumerable.Range(0, pool.Pool.Options.ReplicaCount * 2)
                .Select(_ => Task.Run(() => pool.QueryOnceAsync(goal).AsTask())));
        }
    }
}

/// <summary>Shared state of the benchmarks that compare a pool against one plain interpreter with <c>test(123).</c>.</summary>
public abstract class TreallaPoolVsPlain
{
    private protected WasmModule Module { get; private set; } = null!;

    private protected PrologPool SharedPool { get; private set; } = null!;

    private protected PrologInterpreter Single { get; private set; } = null!;

    private IGuestInstance _single = null!;

    private protected void SetUp(PoolOptions options)
    {
        Module = Trealla.Load();
        SharedPool = PrologPool.Create(Module, options);
        SharedPool.ConsultAsync("test(123).").AsTask().GetAwaiter().GetResult();
        Trealla.WarmUp(SharedPool, "test(X)");
        (_single, Single) = Trealla.WarmPlain(Module);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        SharedPool.Dispose();
        _single.Dispose();
        Module.Dispose();
    }
}

/// <summary>
/// The seed's benchmark (trealla-prolog/go pool_test.go): the leader consults <c>test(123).</c>; one operation is
/// 100 concurrent <c>test(X).</c> queries. Baseline: one interpreter behind a lock serving the same 100 queries.
/// The pool runs <see cref="PrologPool.DefaultOptions"/> at both isolation levels.
/// </summary>
[Config(typeof(ShortConfig))]
public class TreallaSeedBenchmarks : TreallaPoolVsPlain
{
    private const int Queries = 100;
    private readonly SemaphoreSlim _lock = new(1, 1);

    public static IEnumerable<int> ReplicaCounts => new[] { 1, 2, 4, Environment.ProcessorCount, 16 }.Distinct().Order();

    [ParamsSource(nameof(ReplicaCounts))]
    public int Replicas { get; set; }

    [Params(ReadIsolation.PerRead, ReadIsolation.PerCommit)]
    public ReadIsolation Isolation { get; set; }

    [GlobalSetup]
    public void Setup() => SetUp(Trealla.Options(Replicas, isolation: Isolation));

    [Benchmark(Baseline = true, Description = "single interpreter + lock")]
    public Task LockedSingle() => Task.WhenAll(Enumerable.Range(0, Queries).Select(_ => Task.Run(async () =>
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            Check(Single.QueryOnce("test(X)"));
        }
        finally
        {
            _lock.Release();
        }
    })));

    [Benchmark(Description = "pool (SharedBase)")]
    public Task Pool() => Task.WhenAll(Enumerable.Range(0, Queries).Select(_ => Task.Run(async () =>
        Check(await SharedPool.QueryOnceAsync("test(X)").ConfigureAwait(false)))));

    private static void Check(PrologAnswer answer)
    {
        if (!answer.IsSuccess || answer["X"] is not PrologInteger { Value: var v } || v != 123)
        {
            throw new InvalidOperationException($"Wrong answer: {answer}");
        }
    }
}

/// <summary>One <c>test(X).</c> query: on a plain instance vs on a pool replica (1 replica, reset included).</summary>
[Config(typeof(ShortConfig))]
public class TreallaQueryLatencyBenchmarks : TreallaPoolVsPlain
{
    [Params(ReplicaResetMode.Madvise, ReplicaResetMode.KeepResident)]
    public ReplicaResetMode Reset { get; set; }

    [Params(TrackerKind.CowFile, TrackerKind.UffdWriteProtect, TrackerKind.StoreBarrier)]
    public TrackerKind ReplicaTracker { get; set; }

    [GlobalSetup]
    public void Setup() => SetUp(Trealla.Options(1, SyncStrategyKind.SharedBase, Reset, ReplicaTracker));

    [Benchmark(Baseline = true, Description = "plain instance")]
    public PrologAnswer Plain() => Single.QueryOnce("test(X)");

    [Benchmark(Description = "replica (query + reset)")]
    public PrologAnswer Replica() => SharedPool.QueryOnceAsync("test(X)").AsTask().GetAwaiter().GetResult();
}

/// <summary>
/// Write-heavy Trealla workload with 16 replicas: one operation is one <c>assertz</c> write (commit to every
/// replica) followed by 16 concurrent queries that must see it. By strategy; FullCopy is the seed's method.
/// Dirty pages per commit are printed at cleanup (pool metrics), since BenchmarkDotNet columns cannot see them.
/// </summary>
[Config(typeof(ShortConfig))]
public class TreallaWriteHeavyBenchmarks
{
    private const int Replicas = 16;
    private WasmModule _module = null!;
    private PrologPool _pool = null!;
    private PoolPageCounter _counter = null!;
    private int _n;

    [Params(SyncStrategyKind.FullCopy, SyncStrategyKind.DirtyCopy, SyncStrategyKind.SharedBase)]
    public SyncStrategyKind Strategy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _module = Trealla.Load();
        _pool = Trealla.Pool(_module, Replicas, Strategy);
        _pool.ExecuteAsync("assertz(fact(0))").AsTask().GetAwaiter().GetResult();
        Trealla.WarmUp(_pool, "fact(0)");
        _counter = PoolPageCounter.Commits();
    }

    [Benchmark(Description = "assertz + commit")]
    public ValueTask Write() => _pool.AssertAsync($"fact({++_n})");

    [Benchmark(Description = "assertz + 16 concurrent queries")]
    public async Task WriteThenReads()
    {
        int n = ++_n;
        await _pool.AssertAsync($"fact({n})").ConfigureAwait(false);
        await Task.WhenAll(Enumerable.Range(0, Replicas).Select(_ => Task.Run(async () =>
        {
            PrologAnswer answer = await _pool.QueryOnceAsync($"fact({n})").ConfigureAwait(false);
            if (!answer.IsSuccess)
            {
                throw new InvalidOperationException($"A read missed fact({n}): {answer}");
            }
        }))).ConfigureAwait(false);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _counter.Dispose();
        Console.WriteLine($"// {Strategy}: {_counter.Events} commits, {_counter.PagesPerEvent:F1} dirty pages per commit, " +
                          $"{_n} clauses asserted");
        _pool.Dispose();
        _module.Dispose();
    }
}
