using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>Builds small benchmark guests from WAT with wat2wasm (wabt) and compiles them through the artifact cache.</summary>
internal static class BenchGuests
{
    public static WasmModule Load(string wat) => WasmModule.Load(Assemble(wat));

    public static byte[] Assemble(string wat) => WatAssembler.Assemble(wat);
}

/// <summary>Overhead of calling an empty export from C#: raw slots, and the typed delegate.</summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class CallOverheadBenchmarks
{
    private WasmModule _module = null!;
    private WasmInstance _instance = null!;
    private WasmFunction _raw = null!;
    private Action _typed = null!;
    private Func<int, int, int> _add = null!;

    [GlobalSetup]
    public void Setup()
    {
        _module = BenchGuests.Load("""
            (module (memory 1)
              (func (export "nothing"))
              (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
            """);
        _instance = _module.Instantiate(new Linker());
        _raw = _instance.GetFunction("nothing");
        _typed = _instance.GetAction("nothing");
        _add = _instance.GetFunction<int, int, int>("add");
    }

    [Benchmark(Baseline = true)]
    public void EmptyExport_RawSlots() => _raw.Invoke([], []);

    [Benchmark]
    public void EmptyExport_TypedDelegate() => _typed();

    [Benchmark]
    public int Add_TypedDelegate() => _add(1, 2);

    [GlobalCleanup]
    public void Cleanup()
    {
        _instance.Dispose();
        _module.Dispose();
    }
}

/// <summary>
/// Clone of an instance onto a new replica of its committed memory: replica view + tracker + native clone
/// (globals, tables), then dispose — a full round trip, since a clone cannot be created twice without it.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class CloneBenchmarks
{
    private WasmModule _module = null!;
    private WasmInstance _template = null!;
    private SyncStrategy _strategy = null!;

    /// <summary>Wasm pages: 320 = 20 MiB, 16384 = 1 GiB.</summary>
    [Params(320, 16384)]
    public int WasmPages { get; set; }

    [Params(TrackerKind.UffdWriteProtect, TrackerKind.CowFile)]
    public TrackerKind ReplicaTracker { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _module = BenchGuests.Load($"""
            (module (memory (export "memory") {WasmPages})
              (global $sp (mut i32) (i32.const 8388608))
              (table 2 funcref) (elem (i32.const 0) $f)
              (func $f (export "f") (result i32) (global.get $sp)))
            """);
        _template = _module.Instantiate(new Linker(), new InstanceOptions
        {
            Memory = LeaderMemory.For(new SyncOptions { ReplicaTracker = ReplicaTracker }),
        });
        _strategy = ((LeaderMemory)_template.LinearMemory!).Strategy;
        _template.Memory!.GetSpan(0, 4096).Fill(1);
        _strategy.Commit();
    }

    [Benchmark]
    public int CloneOntoNewReplica()
    {
        using WasmInstance clone = _template.Clone(new ReplicaMemory(_strategy.CreateReplica()));
        return (int)clone.MemorySize;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _template.Dispose();
        _module.Dispose();
    }
}

/// <summary>A short job: these benchmarks look for orders of magnitude, on a noisy 2-core VM.</summary>
internal sealed class ShortConfig : ManualConfig
{
    public ShortConfig() => AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(8));
}
