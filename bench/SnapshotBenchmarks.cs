using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using CowWasm.Bench.Suite;
using CowWasm.Memory;
using CowWasm.Memory.Images;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Bench;

/// <summary>
/// Loading a snapshot of <see cref="SizeMiB"/> (every page non-zero) so that it is ready to serve: open + header
/// check + a SharedBase strategy over the mapped file + one replica. Baseline: reading the file's data into memory
/// (the "deserialize" way; the buffer is allocated and touched in setup). The file is in the page cache for both.
/// Disposal happens in the untimed iteration cleanup.
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("snapshot")]
public class SnapshotLoadBenchmarks
{
    private static readonly byte[] s_module = SHA256.HashData("bench"u8);
    private string _path = null!;
    private byte[] _buffer = null!;
    private SyncStrategy? _loaded;

    [Params(16L, 256L, 1024L)]
    public long SizeMiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        long pages = SizeMiB * 256;
        string dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "cowwasm", "bench-snapshots");
        Directory.CreateDirectory(dir);
        _path = Path.Combine(dir, $"{SizeMiB}m.snap");
        using (SyncStrategy source = SyncStrategy.Create(new SyncOptions { InitialPageCount = pages, MaxPageCount = pages }))
        {
            for (long p = 0; p < pages; p++)
            {
                source.Leader.GetPage(p)[0] = (byte)(p | 1);
            }

            source.Commit();
            PageImageFile.Save(_path, source.Base, pages, s_module);
        }

        _buffer = GC.AllocateUninitializedArray<byte>(checked((int)(pages * Pages.Size)), pinned: true);
        Array.Fill(_buffer, (byte)0xA5);
        ReadIntoMemory(); // page cache warm
    }

    [Benchmark]
    public Replica Load()
    {
        using PageImage snapshot = PageImageFile.Open(_path);
        _loaded = SyncStrategy.Create(new SyncOptions { MaxPageCount = snapshot.Header.PageCount, ReplicaTracker = TrackerKind.CowFile }, snapshot.TakeBase());
        return _loaded.CreateReplica();
    }

    [Benchmark(Baseline = true)]
    public int ReadIntoMemory()
    {
        using SafeFileHandle file = File.OpenHandle(_path);
        int total = 0;
        while (total < _buffer.Length)
        {
            int n = RandomAccess.Read(file, _buffer.AsSpan(total), Pages.Size + total);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }

            total += n;
        }

        return total;
    }

    [IterationCleanup]
    public void Unload()
    {
        _loaded?.Dispose();
        _loaded = null;
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);
}

/// <summary>
/// The one-time cost a loaded snapshot pays at its first commit: copying the image from the file into a memfd
/// (copy-up) and remapping the leader and one replica onto it, against the same commit (one dirty page) on a
/// pool whose base was a memfd from the start. <see cref="Fill"/>: <c>dense</c> = every page non-zero (the worst
/// case); <c>sparse</c> = one page in 16 non-zero (zero pages are scanned but not written). The snapshot is in
/// the page cache; load, the leader's write and disposal are untimed.
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("snapshot")]
public class SnapshotCopyUpBenchmarks
{
    private static readonly byte[] s_module = SHA256.HashData("bench-copy-up"u8);
    private string _path = null!;
    private SyncStrategy? _sync;

    [Params(16L, 256L, 1024L)]
    public long SizeMiB { get; set; }

    [Params("dense", "sparse")]
    public string Fill { get; set; } = "dense";

    private long PageCount => SizeMiB * 256;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"cowwasm-copyup-{Environment.ProcessId}.snap");
        using SyncStrategy source = SyncStrategy.Create(new SyncOptions { InitialPageCount = PageCount, MaxPageCount = PageCount });
        int stride = Fill == "dense" ? 1 : 16;
        for (long p = 0; p < PageCount; p += stride)
        {
            source.Leader.GetPage(p)[0] = (byte)(p | 1);
        }

        source.Commit();
        PageImageFile.Save(_path, source.Base, PageCount, s_module);
        File.ReadAllBytes(_path); // page cache warm
    }

    [IterationSetup(Target = nameof(FirstCommitAfterLoad))]
    public void Load()
    {
        using PageImage snapshot = PageImageFile.Open(_path);
        _sync = SyncStrategy.Create(new SyncOptions { MaxPageCount = PageCount }, snapshot.TakeBase());
        Prepare(_sync);
    }

    [IterationSetup(Target = nameof(CommitOnMemfdBase))]
    public void Create()
    {
        _sync = SyncStrategy.Create(new SyncOptions { InitialPageCount = PageCount, MaxPageCount = PageCount });
        Prepare(_sync);
    }

    [Benchmark]
    public void FirstCommitAfterLoad() => _sync!.Commit();

    [Benchmark(Baseline = true)]
    public void CommitOnMemfdBase() => _sync!.Commit();

    [IterationCleanup]
    public void Unload()
    {
        _sync?.Dispose();
        _sync = null;
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    private static void Prepare(SyncStrategy sync)
    {
        sync.CreateReplica();
        sync.Leader.GetPage(1)[0] = 0xEE;
    }
}

/// <summary>
/// From "Trealla snapshot on disk" to "first query answered" with 16 replicas, vs building the same state again
/// (new pool + consult of the same program). The program: 2,000 facts and a rule.
/// </summary>
[Config(typeof(SuiteConfig))]
[BenchmarkCategory("snapshot")]
public class TreallaSnapshotBenchmarks
{
    private const int Replicas = 16;
    private WasmModule _module = null!;
    private string _path = null!;
    private string _program = null!;

    [GlobalSetup]
    public void Setup()
    {
        _module = Trealla.Load();
        _program = string.Concat(Enumerable.Range(0, 2000).Select(i => $"item({i}, 'name {i}').\n")) + "pick(N, X) :- item(N, X).\n";
        _path = Path.Combine(Path.GetTempPath(), $"cowwasm-trealla-{Environment.ProcessId}.snap");
        using PrologPool pool = PrologPool.Create(_module, PrologPool.DefaultOptions with { ReplicaCount = 1 });
        pool.ConsultAsync(_program).AsTask().GetAwaiter().GetResult();
        pool.SaveSnapshotAsync(_path).AsTask().GetAwaiter().GetResult();
    }

    [Benchmark]
    public PrologAnswer FromSnapshot()
    {
        using PrologPool pool = PrologPool.CreateFromSnapshot(_module, _path, PrologPool.DefaultOptions with { ReplicaCount = Replicas });
        return Answer(pool);
    }

    [Benchmark(Baseline = true)]
    public PrologAnswer RebuildByConsult()
    {
        using PrologPool pool = PrologPool.Create(_module, PrologPool.DefaultOptions with { ReplicaCount = Replicas });
        pool.ConsultAsync(_program).AsTask().GetAwaiter().GetResult();
        return Answer(pool);
    }

    private static PrologAnswer Answer(PrologPool pool)
    {
        PrologAnswer answer = pool.QueryOnceAsync("pick(1234, X)").AsTask().GetAwaiter().GetResult();
        return answer.IsSuccess ? answer : throw new InvalidOperationException($"pick(1234, X) failed: {answer}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        File.Delete(_path);
        _module.Dispose();
    }
}
