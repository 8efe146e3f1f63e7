using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// CPU-bound WAT kernels built three ways: guard pages (the default), software bounds checks, and guard pages without
/// loop interrupt polls. Each kernel's ratio column reads against software checks; the no-poll row shows what the
/// back-edge polls cost. <c>dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll --filter '*BoundsCheck*'</c>
/// </summary>
[Config(typeof(ShortConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class BoundsCheckBenchmarks
{
    private const string Kernels = """
        (module
          (memory 4)
          ;; Sieve of Eratosthenes over bytes [0, n): returns the number of primes below n.
          (func (export "sieve") (param $n i32) (result i32)
            (local $i i32) (local $j i32) (local $count i32)
            (memory.fill (i32.const 0) (i32.const 0) (local.get $n))
            (local.set $i (i32.const 2))
            (block $done (loop $outer
              (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
              (if (i32.eqz (i32.load8_u (local.get $i)))
                (then
                  (local.set $count (i32.add (local.get $count) (i32.const 1)))
                  (local.set $j (i32.mul (local.get $i) (local.get $i)))
                  (block $inner_done (loop $inner
                    (br_if $inner_done (i32.ge_u (local.get $j) (local.get $n)))
                    (i32.store8 (local.get $j) (i32.const 1))
                    (local.set $j (i32.add (local.get $j) (local.get $i)))
                    (br $inner)))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $outer)))
            (local.get $count))
          ;; Copies n bytes from 0 to 131072, eight at a time, `rounds` times (a load/store loop, not memory.copy).
          (func (export "copy") (param $n i32) (param $rounds i32) (result i64)
            (local $i i32) (local $sum i64)
            (block $done (loop $round
              (br_if $done (i32.eqz (local.get $rounds)))
              (local.set $i (i32.const 0))
              (block $copied (loop $word
                (br_if $copied (i32.ge_u (local.get $i) (local.get $n)))
                (i64.store offset=131072 (local.get $i) (i64.add (i64.load (local.get $i)) (i64.const 1)))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $word)))
              (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
              (br $round)))
            (i64.load offset=131072 (i32.const 0)))
          (func $fib (export "fib") (param $n i32) (result i32)
            (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
              (then (local.get $n))
              (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
        )
        """;

    private readonly Dictionary<string, (WasmModule Module, WasmInstance Instance)> _variants = [];

    [GlobalSetup]
    public void Setup()
    {
        byte[] wasm = BenchGuests.Assemble(Kernels);
        foreach ((string name, ArtifactOptions options) in new[]
        {
            ("guard", new ArtifactOptions()),
            ("software", new ArtifactOptions { BoundsChecks = BoundsChecks.Software }),
            ("guard-nopoll", new ArtifactOptions { LoopInterruptChecks = false }),
        })
        {
            WasmModule module = WasmModule.Load(wasm, options);
            _variants[name] = (module, module.Instantiate(new Linker()));
        }
    }

    private ulong Run(string variant, string export, params ulong[] args)
    {
        Span<ulong> result = stackalloc ulong[1];
        _variants[variant].Instance.GetFunction(export).Invoke(args, result);
        return result[0];
    }

    [Benchmark(Baseline = true), BenchmarkCategory("sieve 200k")]
    public ulong Sieve_Software() => Run("software", "sieve", 200_000);

    [Benchmark, BenchmarkCategory("sieve 200k")]
    public ulong Sieve_GuardPages() => Run("guard", "sieve", 200_000);

    [Benchmark, BenchmarkCategory("sieve 200k")]
    public ulong Sieve_GuardPagesNoLoopPolls() => Run("guard-nopoll", "sieve", 200_000);

    [Benchmark(Baseline = true), BenchmarkCategory("copy 64 KiB x 16")]
    public ulong Copy_Software() => Run("software", "copy", 65536, 16);

    [Benchmark, BenchmarkCategory("copy 64 KiB x 16")]
    public ulong Copy_GuardPages() => Run("guard", "copy", 65536, 16);

    [Benchmark, BenchmarkCategory("copy 64 KiB x 16")]
    public ulong Copy_GuardPagesNoLoopPolls() => Run("guard-nopoll", "copy", 65536, 16);

    [Benchmark(Baseline = true), BenchmarkCategory("fib 25")]
    public ulong Fib_Software() => Run("software", "fib", 25);

    [Benchmark, BenchmarkCategory("fib 25")]
    public ulong Fib_GuardPages() => Run("guard", "fib", 25);

    [Benchmark, BenchmarkCategory("fib 25")]
    public ulong Fib_GuardPagesNoLoopPolls() => Run("guard-nopoll", "fib", 25);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach ((WasmModule module, WasmInstance instance) in _variants.Values)
        {
            instance.Dispose();
            module.Dispose();
        }
    }
}
