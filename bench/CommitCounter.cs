using System.Diagnostics.Metrics;
using CowWasm.Pool;

namespace CowWasm.Bench;

/// <summary>Counts pool commits and their dirty pages from the pool's metrics (meter <c>CowWasm.Pool</c>).</summary>
internal sealed class CommitCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _commits, _dirtyPages;

    public CommitCounter()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == GuestPool.MeterName && instrument.Name == "cowwasm.pool.commit.dirty_pages")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, pages, _, _) =>
        {
            Interlocked.Increment(ref _commits);
            Interlocked.Add(ref _dirtyPages, pages);
        });
        _listener.Start();
    }

    public long Commits => Interlocked.Read(ref _commits);

    public long DirtyPages => Interlocked.Read(ref _dirtyPages);

    public double DirtyPagesPerCommit => (double)Interlocked.Read(ref _dirtyPages) / Math.Max(1, Commits);

    public void Dispose() => _listener.Dispose();
}
