using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;

namespace CowWasm.Server;

/// <summary>
/// Admission to the backend — at most <see cref="ServerOptions.EffectiveMaxConcurrentRequests"/> run, at most
/// <see cref="ServerOptions.MaxQueuedRequests"/> wait (oldest first), the rest are refused at once — and the service's
/// meter (<c>CowWasm.Server</c>): the queue's length and the requests answered with an error status.
/// </summary>
internal sealed class ServiceAdmission : IDisposable
{
    public const string MeterName = "CowWasm.Server";

    private readonly Meter _meter = new(MeterName);

    public ServiceAdmission(ServerOptions options)
    {
        Limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = options.EffectiveMaxConcurrentRequests,
            QueueLimit = options.MaxQueuedRequests,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        _meter.CreateObservableGauge("cowwasm.server.requests.queued", () => Queued, "{request}", "Requests waiting for the backend.");
        Refused = _meter.CreateCounter<long>("cowwasm.server.requests.refused", "{request}",
            "Requests answered with an error status (tag status): the client's errors, refusals and our failures.");
    }

    public ConcurrencyLimiter Limiter { get; }

    /// <summary>Requests waiting for the backend now.</summary>
    public long Queued => Limiter.GetStatistics()?.CurrentQueuedCount ?? 0;

    public Counter<long> Refused { get; }

    public void Dispose()
    {
        _meter.Dispose();
        Limiter.Dispose();
    }
}
