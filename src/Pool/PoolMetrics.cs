using System.Diagnostics.Metrics;

namespace CowWasm.Pool;

/// <summary>The pool's instruments (meter "CowWasm.Pool"); tags carry the strategy.</summary>
internal sealed class PoolMetrics : IDisposable
{
    public const string MeterName = "CowWasm.Pool";

    private readonly Meter _meter = new(MeterName);

    public PoolMetrics(Func<int> readsWaiting, Func<int> faulted)
    {
        Reads = _meter.CreateCounter<long>("cowwasm.pool.reads", "{read}", "Read transactions finished (returned, failed or interrupted).");
        Commits = _meter.CreateCounter<long>("cowwasm.pool.commits", description: "Write transactions committed.");
        Rollbacks = _meter.CreateCounter<long>("cowwasm.pool.rollbacks", description: "Write transactions rolled back (threw or trapped).");
        DirtyPages = _meter.CreateHistogram<long>("cowwasm.pool.commit.dirty_pages", "{page}", "4 KiB pages written by a committed transaction.");
        UnchangedPages = _meter.CreateCounter<long>("cowwasm.pool.commit.unchanged_pages", "{page}",
            "Pages a transaction wrote with the bytes they already held: neither written to the base nor sent (SkipUnchangedPages).");
        CommitDuration = _meter.CreateHistogram<double>("cowwasm.pool.commit.duration", "ms", "Time to commit a write to the base and every replica.");
        ResetPages = _meter.CreateHistogram<long>("cowwasm.pool.reset.pages", "{page}",
            "4 KiB pages a replica reset restored: what the read left dirty, as the replica tracker reports it.");
        ResetDuration = _meter.CreateHistogram<double>("cowwasm.pool.reset.duration", "ms", "Time to return a replica to the committed state after a read.");
        _meter.CreateObservableGauge("cowwasm.pool.reads.waiting", readsWaiting, "{read}", "Reads waiting for a replica or for a writer.");
        _meter.CreateObservableGauge("cowwasm.pool.faulted", faulted, description: "1 when the pool is faulted (a commit could not be undone) and serves nothing, else 0.");
    }

    public Counter<long> Reads { get; }

    public Counter<long> Commits { get; }

    public Counter<long> Rollbacks { get; }

    public Histogram<long> DirtyPages { get; }

    public Counter<long> UnchangedPages { get; }

    public Histogram<double> CommitDuration { get; }

    public Histogram<double> ResetDuration { get; }

    public Histogram<long> ResetPages { get; }

    public void Dispose() => _meter.Dispose();
}
