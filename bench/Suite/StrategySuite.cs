using BenchmarkDotNet.Attributes;
using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;

namespace CowWasm.Bench.Suite;

/// <summary>
/// Shared set-up of the strategy suite: a committed image of <see cref="SizeMiB"/> whose every page has been written
/// once (so base pages exist in the page cache and first-touch faults are paid here, untimed), plus helpers.
/// </summary>
public abstract class StrategySuiteBase
{
    protected SyncStrategy Sync { get; private set; } = null!;

    protected List<Replica> ReplicaList { get; } = [];

    protected long PageCount => SizeMiB * 256;

    public abstract long SizeMiB { get; set; }

    public static IEnumerable<long> Sizes => SuiteScope.Sizes;

    protected void CreateStrategy(SyncOptions options)
    {
        Sync = SyncStrategy.Create(options with { InitialPageCount = PageCount, MaxPageCount = PageCount });
        for (long page = 0; page < PageCount; page++)
        {
            Sync.Leader.GetPage(page)[0] = 1;
        }

        Sync.Commit();
    }

    /// <summary>Writes one byte into each of <paramref name="count"/> pages spread evenly over <paramref name="memory"/>, shifted by <paramref name="round"/>.</summary>
    protected void WriteSpread(PageMemory memory, int count, int round)
    {
        long step = Math.Max(1, PageCount / count);
        for (int i = 0; i < count; i++)
        {
            memory.GetPage((i * step + round) % PageCount)[8] = (byte)round;
        }
    }

    protected void DisposeAll()
    {
        ReplicaList.ForEach(r => r.Dispose());
        ReplicaList.Clear();
        Sync?.Dispose();
    }
}

/// <summary>
/// 1. Commit latency: leader tracker collect + copy into the base and, for private strategies, into every replica
/// (+ keep-resident refreshes). The leader's writes happen in the untimed iteration setup, so their page faults
/// (CoW faults, uffd write-protect faults) are not part of the number. Baseline: memcpy of the dirty pages once.
/// Footprint columns: the replicas after the last commit.
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("commit")]
public class CommitSuite : StrategySuiteBase
{
    private PageCopy _reference = null!;
    private int _round, _commits;

    [Params(SyncStrategyKind.FullCopy, SyncStrategyKind.DirtyCopy, SyncStrategyKind.SharedBase)]
    public SyncStrategyKind Strategy { get; set; }

    /// <summary>The leader tracker.</summary>
    [Params(TrackerKind.AllPages, TrackerKind.CowFile, TrackerKind.UffdWriteProtect, TrackerKind.Compare)]
    public TrackerKind Tracker { get; set; }

    [ParamsSource(nameof(Sizes))]
    public override long SizeMiB { get; set; }

    [ParamsSource(nameof(DirtyPageCounts))]
    public int DirtyPages { get; set; }

    [ParamsSource(nameof(ReplicaCounts))]
    public int Replicas { get; set; }

    public static IEnumerable<int> DirtyPageCounts => SuiteScope.DirtyPages;

    public static IEnumerable<int> ReplicaCounts => SuiteScope.Replicas;

    [GlobalSetup(Target = nameof(Commit))]
    public void Setup()
    {
        CreateStrategy(new SyncOptions { Strategy = Strategy, LeaderTracker = Tracker });
        for (int i = 0; i < Replicas; i++)
        {
            ReplicaList.Add(Sync.CreateReplica());
        }
    }

    [GlobalSetup(Target = nameof(MemcpyDirtyPages))]
    public void SetupReference() => _reference = new PageCopy(DirtyPages);

    [IterationSetup(Target = nameof(Commit))]
    public void Write() => WriteSpread(Sync.Leader, DirtyPages, ++_round);

    [Benchmark]
    public CommitResult Commit()
    {
        _commits++;
        return Sync.Commit();
    }

    [Benchmark(Baseline = true)]
    public void MemcpyDirtyPages() => _reference.Copy();

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_commits > 0)
        {
            Footprint.Record(this, ReplicaList);
        }

        DisposeAll();
    }
}

/// <summary>
/// 2. A SharedBase replica's reset after a read that scribbled on <see cref="Scribbled"/> pages: madvise vs
/// keep-resident copy-back, by replica tracker. The scribbling is the untimed iteration setup. Baseline: memcpy
/// of the scribbled pages. Footprint columns: the replica after its last reset (keep-resident keeps its copies).
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("reset")]
public class ResetSuite : StrategySuiteBase
{
    private PageCopy _reference = null!;
    private int _round, _resets;

    [Params(ReplicaResetMode.Madvise, ReplicaResetMode.KeepResident)]
    public ReplicaResetMode Mode { get; set; }

    /// <summary>The replica tracker.</summary>
    [Params(TrackerKind.CowFile, TrackerKind.UffdWriteProtect)]
    public TrackerKind Tracker { get; set; }

    [ParamsSource(nameof(Sizes))]
    public override long SizeMiB { get; set; }

    [Params(1, 16, 256, 4096)]
    public int Scribbled { get; set; }

    [GlobalSetup(Target = nameof(Reset))]
    public void Setup()
    {
        CreateStrategy(new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ReplicaTracker = Tracker, ResetMode = Mode });
        ReplicaList.Add(Sync.CreateReplica());
    }

    [GlobalSetup(Target = nameof(MemcpyScribbledPages))]
    public void SetupReference() => _reference = new PageCopy(Scribbled);

    [IterationSetup(Target = nameof(Reset))]
    public void Scribble() => WriteSpread(ReplicaList[0].Memory, Scribbled, ++_round);

    [Benchmark]
    public long Reset()
    {
        _resets++;
        return Sync.ResetReplica(ReplicaList[0]);
    }

    [Benchmark(Baseline = true)]
    public void MemcpyScribbledPages() => _reference.Copy();

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_resets > 0)
        {
            Footprint.Record(this, ReplicaList);
        }

        DisposeAll();
    }
}

/// <summary>
/// 3. Creating one replica from the committed base (for SharedBase it must not grow with the size). The previous
/// replica is disposed in the untimed iteration setup. Baseline: one mmap + munmap of the same size (two syscalls,
/// the least any mapping-based creation can cost).
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("create")]
public class CreationSuite : StrategySuiteBase
{
    private Replica? _replica;

    [Params(SyncStrategyKind.FullCopy, SyncStrategyKind.DirtyCopy, SyncStrategyKind.SharedBase)]
    public SyncStrategyKind Strategy { get; set; }

    /// <summary>The replica tracker (its arming is part of creation).</summary>
    [Params(TrackerKind.CowFile, TrackerKind.UffdWriteProtect, TrackerKind.Compare)]
    public TrackerKind Tracker { get; set; }

    [ParamsSource(nameof(Sizes))]
    public override long SizeMiB { get; set; }

    [GlobalSetup(Target = nameof(Create))]
    public void Setup() => CreateStrategy(new SyncOptions { Strategy = Strategy, ReplicaTracker = Tracker });

    [IterationSetup(Target = nameof(Create))]
    public void DisposePrevious()
    {
        _replica?.Dispose();
        _replica = null;
    }

    [Benchmark]
    public Replica Create() => _replica = Sync.CreateReplica();

    [Benchmark(Baseline = true)]
    public void MmapMunmap()
    {
        long length = PageCount * Pages.Size;
        nint address = Libc.Mmap(0, length, Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS | MapFlags.MAP_NORESERVE, -1, 0);
        Libc.Munmap(address, length);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _replica?.Dispose();
        _replica = null;
        DisposeAll();
    }
}

/// <summary>
/// 4. Footprint at scale: every one of <see cref="Replicas"/> replicas serves a read that writes 1 % of its pages.
/// Timed: those writes (the CoW faults a read pays). Footprint columns: all replicas just before their resets
/// (recorded at each iteration's end). Baseline: memcpy of the same number of pages.
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("footprint")]
public class FootprintSuite : StrategySuiteBase
{
    private PageCopy _reference = null!;
    private int _round;

    [Params(SyncStrategyKind.FullCopy, SyncStrategyKind.DirtyCopy, SyncStrategyKind.SharedBase)]
    public SyncStrategyKind Strategy { get; set; }

    [Params(ReplicaResetMode.Madvise, ReplicaResetMode.KeepResident)]
    public ReplicaResetMode Mode { get; set; }

    [ParamsSource(nameof(Sizes))]
    public override long SizeMiB { get; set; }

    [ParamsSource(nameof(ReplicaCounts))]
    public int Replicas { get; set; }

    public static IEnumerable<int> ReplicaCounts => SuiteScope.Replicas;

    private int PagesPerRead => (int)Math.Max(1, PageCount / 100);

    [GlobalSetup(Target = nameof(ReadOnEveryReplica))]
    public void Setup()
    {
        CreateStrategy(new SyncOptions { Strategy = Strategy, ResetMode = Mode });
        for (int i = 0; i < Replicas; i++)
        {
            ReplicaList.Add(Sync.CreateReplica());
        }
    }

    [GlobalSetup(Target = nameof(MemcpySamePages))]
    public void SetupReference() => _reference = new PageCopy(PagesPerRead);

    [Benchmark]
    public void ReadOnEveryReplica()
    {
        _round++;
        foreach (Replica replica in ReplicaList)
        {
            WriteSpread(replica.Memory, PagesPerRead, _round);
        }
    }

    [IterationCleanup(Target = nameof(ReadOnEveryReplica))]
    public void RecordAndReset()
    {
        Footprint.Record(this, ReplicaList);
        ReplicaList.ForEach(r => Sync.ResetReplica(r));
    }

    [Benchmark(Baseline = true)]
    public void MemcpySamePages()
    {
        for (int i = 0; i < Replicas; i++)
        {
            _reference.Copy();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => DisposeAll();
}

/// <summary>
/// 6. The physical references on their own, so suite results can be read as "× of the limit": memcpy of N pages
/// between warm buffers (<see cref="MemcpyReference"/>) and one cheap syscall (<see cref="SyscallReference"/>).
/// </summary>
[Config(typeof(ShortConfig))]
[BenchmarkCategory("reference")]
public class MemcpyReference
{
    private PageCopy _copy = null!;

    [Params(1, 16, 256, 4096)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup() => _copy = new PageCopy(Pages);

    [Benchmark]
    public void Memcpy() => _copy.Copy();
}

/// <summary>One syscall that does almost nothing: madvise(MADV_NORMAL) of one mapped page.</summary>
[Config(typeof(ShortConfig))]
[BenchmarkCategory("reference")]
public class SyscallReference
{
    private nint _page;

    [GlobalSetup]
    public void Setup() =>
        _page = Libc.Mmap(0, Pages.Size, Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS, -1, 0);

    [Benchmark]
    public void MadviseNormal() => Libc.Madvise(_page, Pages.Size, 0);

    [GlobalCleanup]
    public void Cleanup() => Libc.Munmap(_page, Pages.Size);
}
