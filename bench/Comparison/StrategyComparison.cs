using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Comparison;

/// <summary>One measured row: what was measured, under which parameters, and the value (or why it was skipped).</summary>
internal sealed record Row(string Measure, string Strategy, string Tracker, long SizeMiB, int Replicas, int Pages, TimeSpan? Time,
    long? PrivateBytes = null, long? PssBytes = null, string? Skipped = null, double? Nanoseconds = null);

/// <summary>
/// The strategy comparison behind <c>./run.sh</c>: commit latency, replica creation, read reset and footprint, on
/// the embedded default guest (a Wasm module whose only job is to write the pages it is told to). Timings are
/// medians of repeated samples in one process after a warm-up; first-touch faults happen in untimed preparation.
/// </summary>
internal sealed class StrategyComparison(bool full, Action<string> progress)
{
    private const long MiB = 1 << 20;
    private const long MemoryBudget = 8L << 30; // private replica memory a combination may use here (23 GB machine)

    public List<Row> Rows { get; } = [];

    public void CommitLatency()
    {
        long[] sizes = full ? [16, 256, 1024] : [256];
        int[] dirtyCounts = full ? [1, 16, 256, 4096] : [16];
        int[] replicaCounts = [1, 4, 16, 64];
        foreach (long size in sizes)
        {
            foreach (int dirty in dirtyCounts)
            {
                foreach (SyncStrategyKind strategy in Enum.GetValues<SyncStrategyKind>())
                {
                    foreach (int replicas in replicaCounts)
                    {
                        string tracker = strategy == SyncStrategyKind.FullCopy ? "AllPages" : "CowFile";
                        if (strategy != SyncStrategyKind.SharedBase && replicas * size * MiB > MemoryBudget)
                        {
                            Rows.Add(new Row("commit", strategy.ToString(), tracker, size, replicas, dirty, null,
                                Skipped: $"{replicas} private replicas of {size} MiB exceed the {MemoryBudget >> 30} GiB budget"));
                            continue;
                        }

                        progress($"commit: {strategy}, {size} MiB, {dirty} dirty pages, {replicas} replicas");
                        Rows.Add(Commit(strategy, size, dirty, replicas));
                    }
                }
            }
        }
    }

    /// <summary>SharedBase commits of 16 dirty pages with the store-barrier leader tracker, at 16 MiB and 1 GiB (1 replica).</summary>
    public void StoreBarrierCommit()
    {
        foreach (long size in new long[] { 16, 1024 })
        {
            progress($"commit: SharedBase, store-barrier leader, {size} MiB, 16 dirty pages");
            Rows.Add(Commit(SyncStrategyKind.SharedBase, size, 16, 1, TrackerKind.StoreBarrier));
        }
    }

    private static Row Commit(SyncStrategyKind strategy, long sizeMiB, int dirty, int replicaCount, TrackerKind? leaderTracker = null)
    {
        TrackerKind leader = leaderTracker ?? (strategy == SyncStrategyKind.FullCopy ? TrackerKind.AllPages : TrackerKind.CowFile);
        using var guest = new DefaultGuest(sizeMiB, new SyncOptions
        {
            Strategy = strategy,
            LeaderTracker = leader,
        });
        var replicas = Enumerable.Range(0, replicaCount).Select(_ => guest.Strategy.CreateReplica()).ToList();
        try
        {
            long pages = sizeMiB * MiB / Pages.Size;
            int round = 0;
            int samples = strategy == SyncStrategyKind.FullCopy ? 3 : 25;
            guest.WriteSpread(pages, dirty, ++round); // warm-up commit
            guest.Strategy.Commit();
            TimeSpan median = Measure.Median(samples, () => guest.WriteSpread(pages, dirty, ++round), () => guest.Strategy.Commit());
            return new Row("commit", strategy.ToString(), leader.ToString(), sizeMiB, replicaCount, dirty, median);
        }
        finally
        {
            replicas.ForEach(r => r.Dispose());
        }
    }

    public void ReplicaCreation()
    {
        foreach (TrackerKind tracker in new[] { TrackerKind.CowFile, TrackerKind.UffdWriteProtect }.Where(DirtyTracker.IsSupported))
        {
            foreach (long size in new long[] { 16, 256, 1024 })
            {
                progress($"replica creation: SharedBase, {tracker}, {size} MiB");
                using SyncStrategy strategy = SyncStrategy.Create(new SyncOptions
                {
                    Strategy = SyncStrategyKind.SharedBase,
                    ReplicaTracker = tracker,
                    InitialPageCount = size * MiB / Pages.Size,
                    MaxPageCount = size * MiB / Pages.Size,
                });
                strategy.Commit();
                Replica? replica = null;
                TimeSpan median = Measure.Median(50, () => replica?.Dispose(), () => replica = strategy.CreateReplica());
                replica?.Dispose();
                Rows.Add(new Row("create", "SharedBase", tracker.ToString(), size, 1, 0, median));
            }
        }
    }

    public void ResetCost()
    {
        const long size = 256;
        foreach (ReplicaResetMode mode in Enum.GetValues<ReplicaResetMode>())
        {
            foreach (int scribbled in new[] { 1, 16, 256, 4096 })
            {
                progress($"reset: SharedBase, {mode}, {scribbled} pages scribbled");
                using var guest = new DefaultGuest(size, new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ResetMode = mode });
                Replica replica = guest.Strategy.CreateReplica();
                long pages = size * MiB / Pages.Size;
                int round = 0;
                void Scribble()
                {
                    round++;
                    long step = Math.Max(1, pages / scribbled);
                    for (int i = 0; i < scribbled; i++)
                    {
                        replica.Memory.GetPage(i * step % pages)[7] = (byte)round;
                    }
                }

                Scribble();
                guest.Strategy.ResetReplica(replica);
                TimeSpan median = Measure.Median(20, Scribble, () => guest.Strategy.ResetReplica(replica));
                Rows.Add(new Row("reset", "SharedBase", $"{mode}/{guest.Strategy.Options.EffectiveReplicaTracker}", size, 1, scribbled, median));
            }
        }
    }

    public void Footprint()
    {
        const long size = 1024; // the target is stated for 1 GiB replicas
        long pages = size * MiB / Pages.Size;
        int scribbled = (int)(pages / 100); // 1 %
        foreach (int replicaCount in new[] { 1, 4, 16, 64 })
        {
            progress($"footprint: SharedBase, {size} MiB, {replicaCount} replicas dirtying 1 % each");
            using SyncStrategy strategy = SyncStrategy.Create(new SyncOptions
            {
                Strategy = SyncStrategyKind.SharedBase,
                ResetMode = ReplicaResetMode.KeepResident,
                InitialPageCount = pages,
                MaxPageCount = pages,
            });
            strategy.Commit();
            var replicas = Enumerable.Range(0, replicaCount).Select(_ => strategy.CreateReplica()).ToList();
            foreach (Replica replica in replicas)
            {
                long step = pages / scribbled;
                for (int i = 0; i < scribbled; i++)
                {
                    replica.Memory.GetPage(i * step)[0] = 1;
                }
            }

            (long privateBytes, long pss) = Measure.Footprint(replicas.Select(r => r.Memory));
            Rows.Add(new Row("footprint", "SharedBase", "KeepResident", size, replicaCount, scribbled, null, privateBytes, pss));
            replicas.ForEach(r => r.Dispose());
        }
    }

    /// <summary>Tracker cost per scanned page (a cycle with nothing written) and per dirty page, on 256 MiB.</summary>
    public void TrackerCost()
    {
        const long size = 256;
        const int dirty = 1024;
        foreach (TrackerKind kind in Enum.GetValues<TrackerKind>())
        {
            if (!DirtyTracker.IsSupported(kind))
            {
                Rows.Add(new Row("tracker/scan", "-", kind.ToString(), size, 0, 0, null, Skipped: "not supported by this kernel"));
                continue;
            }

            progress($"tracker cost: {kind}, {size} MiB");
            using var cycle = new TrackerCycle(kind, size * MiB / Pages.Size);
            cycle.Run(dirty); // warm-up
            cycle.Run(0);
            TimeSpan idle = Measure.Median(25, () => { }, () => cycle.Run(0));
            TimeSpan busy = Measure.Median(15, () => { }, () => cycle.Run(dirty));
            Rows.Add(new Row("tracker/scan", "-", kind.ToString(), size, 0, 0, idle, Nanoseconds: idle.TotalNanoseconds / cycle.PageCount));
            Rows.Add(new Row("tracker/dirty", "-", kind.ToString(), size, 0, dirty, busy,
                Nanoseconds: Math.Max(0, (busy - idle).TotalNanoseconds) / dirty));
        }
    }

    /// <summary>The physical reference: memcpy of N pages in user space.</summary>
    public void Reference()
    {
        foreach (int count in new[] { 1, 16, 256, 4096 })
        {
            byte[] source = new byte[count * Pages.Size], target = new byte[count * Pages.Size];
            Array.Fill(source, (byte)1);
            Array.Fill(target, (byte)2);
            TimeSpan median = Measure.Median(50, () => { }, () => source.AsSpan().CopyTo(target));
            Rows.Add(new Row("memcpy", "-", "-", 0, 0, count, median, Nanoseconds: median.TotalNanoseconds / count));
        }

        // One cheap syscall (madvise(MADV_NORMAL) of one mapped page), timed in batches for resolution.
        const int batch = 10_000;
        nint page = Libc.Mmap(0, Pages.Size, Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS, -1, 0);
        try
        {
            TimeSpan batchTime = Measure.Median(15, () => { }, () =>
            {
                for (int i = 0; i < batch; i++)
                {
                    Libc.Madvise(page, Pages.Size, 0);
                }
            });
            Rows.Add(new Row("syscall", "-", "madvise(NORMAL)", 0, 0, 1, batchTime / batch, Nanoseconds: batchTime.TotalNanoseconds / batch));
        }
        finally
        {
            Libc.Munmap(page, Pages.Size);
        }
    }
}

/// <summary>
/// The embedded default guest: a Wasm module with one export, <c>touch(address, value)</c>, instantiated as a
/// pool leader so its memory is the strategy's leader view.
/// </summary>
internal sealed class DefaultGuest : IDisposable
{
    private static readonly Dictionary<long, WasmModule> s_modules = [];
    private readonly WasmInstance _instance;
    private readonly Action<int, int> _touch;

    public DefaultGuest(long sizeMiB, SyncOptions options)
    {
        WasmModule module = ModuleFor(sizeMiB);
        _instance = module.Instantiate(new Linker(), new InstanceOptions { Memory = LeaderMemory.For(options) });
        Strategy = ((LeaderMemory)_instance.LinearMemory!).Strategy;
        Strategy.Commit();
        var touch = _instance.GetFunction("touch");
        _touch = (address, value) => touch.Invoke([(uint)address, (uint)value], []);
    }

    public SyncStrategy Strategy { get; }

    /// <summary>Writes one byte in each of <paramref name="count"/> pages spread over the memory (a transaction's writes).</summary>
    public void WriteSpread(long pages, int count, int round)
    {
        long step = Math.Max(1, pages / count);
        for (int i = 0; i < count; i++)
        {
            _touch((int)((i * step + round) % pages * Pages.Size), round);
        }
    }

    private static WasmModule ModuleFor(long sizeMiB)
    {
        lock (s_modules)
        {
            if (!s_modules.TryGetValue(sizeMiB, out WasmModule? module))
            {
                long wasmPages = sizeMiB * 16;
                module = BenchGuests.Load($"""
                    (module (memory (export "memory") {wasmPages} {wasmPages})
                      (func (export "touch") (param i32 i32) (i32.store8 (local.get 0) (local.get 1))))
                    """);
                s_modules[sizeMiB] = module;
            }

            return module;
        }
    }

    public void Dispose() => _instance.Dispose();
}
