using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using CowWasm.Memory;
using CowWasm.Memory.Trackers;

namespace CowWasm.Bench;

/// <summary>
/// One tracking cycle of a leader (<see cref="TrackerCycle"/>): write one byte to each of <see cref="DirtyPages"/>
/// pages, then collect. Per scanned page = Cycle(0) / PageCount; per dirty page = (Cycle(N) − Cycle(0)) / N.
/// <see cref="DirtyPages"/> = 0 is each tracker's baseline.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class TrackerCostBenchmarks
{
    private TrackerCycle _cycle = null!;

    [Params(TrackerKind.CowFile, TrackerKind.UffdWriteProtect, TrackerKind.Compare, TrackerKind.AllPages)]
    public TrackerKind Tracker { get; set; }

    [Params(16384, 65536)]
    public long PageCount { get; set; }

    [Params(0, 64, 1024)]
    public int DirtyPages { get; set; }

    [GlobalSetup]
    public void Setup() => _cycle = new TrackerCycle(Tracker, PageCount);

    [Benchmark]
    public int Cycle() => _cycle.Run(DirtyPages);

    [GlobalCleanup]
    public void Cleanup() => _cycle.Dispose();

    private sealed class Config : ManualConfig
    {
        public Config() => AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(4).WithIterationCount(10));
    }
}
