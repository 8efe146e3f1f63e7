using BenchmarkDotNet.Attributes;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// Per-transaction overhead on a key-value guest with 4 replicas: a read (get one slot on a replica, then the
/// replica's reset) and a write+commit (put one slot: one dirty page) — by strategy and memory size.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class PoolBenchmarks
{
    private WasmModule _module = null!;
    private GuestPool _pool = null!;
    private long _i;

    [Params(SyncStrategyKind.FullCopy, SyncStrategyKind.DirtyCopy, SyncStrategyKind.SharedBase)]
    public SyncStrategyKind Strategy { get; set; }

    /// <summary>Wasm pages: 2 = 128 KiB, 320 = 20 MiB (Trealla's size).</summary>
    [Params(2, 320)]
    public int WasmPages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _module = BenchGuests.Load($"""
            (module (memory (export "memory") {WasmPages})
              (func $slot (param $k i32) (result i32) (i32.add (i32.const 1024) (i32.shl (i32.and (local.get $k) (i32.const 255)) (i32.const 3))))
              (func (export "put") (param i32 i64) (i64.store (call $slot (local.get 0)) (local.get 1)))
              (func (export "get") (param i32) (result i64) (i64.load (call $slot (local.get 0)))))
            """);
        _pool = GuestPool.Create(_module, new Linker(), new PoolOptions { ReplicaCount = 4, Sync = new SyncOptions { Strategy = Strategy } });
        // Touch every page of leader and replicas once, outside the measurement (first-touch faults are slow here).
        _pool.Write(g =>
        {
            for (long a = 0; a < g.MemorySize; a += 4096)
            {
                g.GetMemory(a, 1)[0] = 1;
            }

            return 0;
        });
        for (int i = 0; i < 8; i++)
        {
            _pool.Read(g => g.GetMemory(0, 1)[0]);
        }
    }

    [Benchmark]
    public long Read() => _pool.Read(g => g.GetFunction<int, long>("get")(7));

    [Benchmark]
    public int WriteAndCommit() => _pool.Write(g =>
    {
        g.GetFunction("put").Invoke([7, (ulong)++_i], []);
        return 0;
    });

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _module.Dispose();
    }
}
