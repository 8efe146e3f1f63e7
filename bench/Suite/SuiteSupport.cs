using System.Collections.Concurrent;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using CowWasm.Bench.Comparison;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;

namespace CowWasm.Bench.Suite;

/// <summary>
/// Which slice of the strategy suite's dimensions runs. <c>COWWASM_SUITE=full</c> runs every combination the issue
/// names (hours on a 2-vCPU VM); the default <c>quick</c> slice keeps every dimension but fewer values of each.
/// </summary>
public static class SuiteScope
{
    public static bool Full { get; } = string.Equals(Environment.GetEnvironmentVariable("COWWASM_SUITE"), "full", StringComparison.OrdinalIgnoreCase);

    public static IEnumerable<long> Sizes => [16, 256, 1024];

    public static IEnumerable<int> DirtyPages => Full ? [1, 16, 256, 4096] : [1, 16, 4096];

    public static IEnumerable<int> Replicas => Full ? [1, 4, 16, 64] : [1, 16, 64];

    /// <summary>Private replica memory (replicas × size) a combination may use: 8 GiB of this 23 GB machine.</summary>
    public const long PrivateBudgetBytes = 8L << 30;

    /// <summary>Why a combination does not run, or null when it does.</summary>
    public static string? WhySkipped(SyncStrategyKind strategy, long sizeMiB, int replicas) =>
        strategy != SyncStrategyKind.SharedBase && replicas * (sizeMiB << 20) > PrivateBudgetBytes
            ? $"{strategy}: {replicas} private replicas of {sizeMiB} MiB exceed the {PrivateBudgetBytes >> 30} GiB budget"
            : null;
}

/// <summary>
/// The suite's configuration: in-process (the footprint columns read /proc/self/smaps of the process that ran the
/// benchmark), one invocation per iteration so each commit, reset or creation is set up by an untimed
/// <c>[IterationSetup]</c>, and a filter that drops combinations which cannot fit in memory or do not apply,
/// printing each with its reason.
/// </summary>
public sealed class SuiteConfig : ManualConfig
{
    public SuiteConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithInvocationCount(1).WithUnrollFactor(1)
            .WithWarmupCount(3).WithIterationCount(15));
        AddColumn(new FootprintColumn("Private_Dirty", f => f.PrivateDirty), new FootprintColumn("Pss", f => f.Pss),
            new FootprintColumn("Private/replica", f => f.PrivateDirty / Math.Max(1, f.Replicas)));
        AddFilter(new SimpleFilter(Runs));
        WithOption(ConfigOptions.DisableLogFile, false);
        WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend));
    }

    private static readonly ConcurrentDictionary<string, bool> s_reported = new();

    private static bool Runs(BenchmarkCase benchmark)
    {
        var strategy = Param(benchmark, "Strategy") as SyncStrategyKind? ?? SyncStrategyKind.SharedBase;
        string? why = (Param(benchmark, "SizeMiB") is long size ? SuiteScope.WhySkipped(strategy, size, Param(benchmark, "Replicas") as int? ?? 1) : null)
            ?? NotApplicable(benchmark, strategy);
        if (why is not null && s_reported.TryAdd(benchmark.Descriptor.Type.Name + benchmark.Parameters.DisplayInfo, true))
        {
            Console.WriteLine($"// skipped {benchmark.Descriptor.Type.Name} [{benchmark.Parameters.DisplayInfo}]: {why}");
        }

        return why is null;
    }

    private static string? NotApplicable(BenchmarkCase benchmark, SyncStrategyKind strategy)
    {
        bool commit = benchmark.Descriptor.Type == typeof(CommitSuite);
        return Param(benchmark, "Tracker") switch
        {
            TrackerKind t when !DirtyTracker.IsSupported(t) => $"{t} is not supported by this kernel",
            TrackerKind.AllPages when strategy != SyncStrategyKind.FullCopy => "AllPages stands for FullCopy only",
            not TrackerKind.AllPages when commit && strategy == SyncStrategyKind.FullCopy =>
                "FullCopy copies every page whatever its leader tracker (the AllPages row stands for it)",
            TrackerKind.CowFile when !commit && strategy != SyncStrategyKind.SharedBase => "private replicas cannot use the CoW-file tracker",
            TrackerKind.Compare when !commit && strategy == SyncStrategyKind.SharedBase =>
                "SharedBase replicas refuse Compare (identical-byte writes leave copies it cannot see)",
            _ => Param(benchmark, "Mode") is ReplicaResetMode.KeepResident && strategy != SyncStrategyKind.SharedBase
                ? "the reset mode only applies to SharedBase" : null,
        };
    }

    private static object? Param(BenchmarkCase benchmark, string name) =>
        benchmark.Parameters.Items.FirstOrDefault(p => p.Name == name)?.Value;
}

/// <summary>Private_Dirty and Pss of a benchmark's replicas, recorded by the benchmark at the end of its run.</summary>
public sealed record Footprint(long PrivateDirty, long Pss, int Replicas)
{
    private static readonly ConcurrentDictionary<string, Footprint> s_recorded = new();

    /// <summary>Records the replicas' footprint for the benchmark object's current parameters.</summary>
    public static void Record(object benchmark, IReadOnlyCollection<Replica> replicas)
    {
        (long privateDirty, long pss) = Measure.Footprint(replicas.Select(r => r.Memory));
        s_recorded[Key(benchmark.GetType(), benchmark.GetType().GetProperties()
            .Where(p => p.GetCustomAttribute<ParamsAttribute>() is not null || p.GetCustomAttribute<ParamsSourceAttribute>() is not null)
            .Select(p => (p.Name, p.GetValue(benchmark))))] = new Footprint(privateDirty, pss, replicas.Count);
    }

    public static Footprint? For(BenchmarkCase benchmark) =>
        s_recorded.GetValueOrDefault(Key(benchmark.Descriptor.Type, benchmark.Parameters.Items.Select(p => (p.Name, (object?)p.Value))));

    private static string Key(Type type, IEnumerable<(string Name, object? Value)> parameters) =>
        type.Name + ":" + string.Join(",", parameters.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => $"{p.Name}={p.Value}"));
}

/// <summary>A summary column showing a recorded <see cref="Footprint"/> (empty for the reference rows).</summary>
internal sealed class FootprintColumn(string name, Func<Footprint, long> value) : IColumn
{
    public string Id => "Footprint." + name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Size;
    public string Legend => $"{name} of the benchmark's replicas from /proc/self/smaps at the end of the run";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        Footprint.For(benchmarkCase) is { } f ? $"{value(f) / 1048576.0:N1} MiB" : "-";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
}

/// <summary>The physical reference kept next to each measured category: memcpy of N pages between warm buffers.</summary>
public sealed class PageCopy
{
    private readonly byte[] _source, _target;

    public PageCopy(long pages)
    {
        _source = GC.AllocateUninitializedArray<byte>((int)Pages.ToBytes(Math.Max(1, pages)), pinned: true);
        _target = GC.AllocateUninitializedArray<byte>(_source.Length, pinned: true);
        Array.Fill(_source, (byte)1); // first touch here, not in the timed copy
        Array.Fill(_target, (byte)2);
    }

    public void Copy() => _source.AsSpan().CopyTo(_target);
}
