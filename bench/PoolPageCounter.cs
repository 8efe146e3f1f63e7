using System.Diagnostics.Metrics;
using CowWasm.Pool;

namespace CowWasm.Bench;

/// <summary>
/// Counts the events of one of the pool's page histograms (meter <c>CowWasm.Pool</c>) and sums their pages:
/// <see cref="Commits"/> for dirty pages per commit, <see cref="Resets"/> for pages restored per read.
/// </summary>
internal sealed class PoolPageCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _events, _pages;

    private PoolPageCounter(string instrumentName)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == GuestPool.MeterName && instrument.Name == instrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, pages, _, _) =>
        {
            Interlocked.Increment(ref _events);
            Interlocked.Add(ref _pages, pages);
        });
        _listener.Start();
    }

    /// <summary>Pages each commit wrote into the base.</summary>
    public static PoolPageCounter Commits() => new("cowwasm.pool.commit.dirty_pages");

    /// <summary>Pages each replica reset restored (what a read left dirty, as the replica tracker reports it).</summary>
    public static PoolPageCounter Resets() => new("cowwasm.pool.reset.pages");

    public long Events => Interlocked.Read(ref _events);

    public long Pages => Interlocked.Read(ref _pages);

    public double PagesPerEvent => (double)Pages / Math.Max(1, Events);

    public void Dispose() => _listener.Dispose();
}
