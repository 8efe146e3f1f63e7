using BenchmarkDotNet.Running;
using CowWasm.Bench;

// Benchmarks and the comparison runner only; what users run otherwise is the cowwasm command (src/Cli).
return args switch
{
    ["compare", .. var rest] => CowWasm.Bench.Comparison.ComparisonRunner.Run(rest),
    ["prolog-pool", .. var rest] => await TreallaPoolProbe.RunAsync(rest),
    ["trealla-configs", .. var rest] => await CowWasm.Bench.Comparison.TreallaConfigSweep.RunAsync(rest),
    ["demo", .. var rest] => EngineDemo.Run(rest),
    ["prolog-write", .. var rest] => await TreallaWriteProbe.RunAsync(rest),
    ["runtime-variants", .. var rest] => await RuntimeVariantsProbe.RunAsync(rest),
    ["wasmtime-trealla", .. var rest] => await CowWasm.Bench.Comparison.WasmtimeTrealla.RunAloneAsync(rest),
    ["wabt-stock", .. var rest] => await WabtStockBench.RunAsync(rest),
    ["guard-cost", .. var rest] => GuardCostProbe.Run(rest),
    ["serve-load", .. var rest] => await CowWasm.Bench.Serve.ServeLoad.RunAsync(rest),
    ["followers", .. var rest] => await CowWasm.Bench.Sharing.FollowerBench.RunAsync(rest),
    ["follow-child", .. var rest] => CowWasm.Bench.Sharing.FollowerBench.Child(rest),
    ["durability", .. var rest] => await CowWasm.Bench.Sharing.DurabilityBench.RunAsync(rest),
    ["replicate", .. var rest] => await CowWasm.Bench.Sharing.ReplicationBench.RunAsync(rest),
    _ => RunBenchmarks(args),
};

static int RunBenchmarks(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(EngineDemo).Assembly).Run(args);
    return 0;
}
