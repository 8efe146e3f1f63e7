using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.ObjectStore;

namespace CowWasm.Replication;

/// <summary>
/// Retries JetStream operations through what a cluster does while it recovers — no responders while a stream elects a
/// leader, a request timing out, a connection re-established — for up to <see cref="ReplicationOptions.RetryTimeout"/>.
/// Answers that will not change (not found, bad request, wrong last sequence) are not retried.
/// </summary>
internal static class Transient
{
    public static async Task<T> RetryAsync<T>(Func<CancellationToken, Task<T>> operation, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        TimeSpan pause = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            // An attempt may wait for a connection that never comes back: bound it by what is left of the timeout.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline) is { Ticks: > 0 } left ? left : TimeSpan.Zero);
            try
            {
                return await operation(attempt.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (Stopwatch.GetTimestamp() >= deadline)
                {
                    throw new TimeoutException($"A JetStream operation kept failing for {timeout.TotalSeconds:0.#} s: {e.Message}", e);
                }

                await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
                pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }

    public static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        _ when cancellationToken.IsCancellationRequested => false,
        NatsObjNotFoundException => false,
        NatsJSApiException api => api.Error.Code is 408 or 500 or 503, // timeout, internal, JetStream not available
        NatsObjException { InnerException: { } inner } => IsTransient(inner, cancellationToken),
        NatsObjException => false,
        NatsJSException or NatsException or TimeoutException or OperationCanceledException => true,
        _ => false,
    };
}
