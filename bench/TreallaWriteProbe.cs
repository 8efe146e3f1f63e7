using System.Diagnostics;
using System.Diagnostics.Metrics;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// <c>prolog-write REPLICAS</c>: where an <c>assertz</c> write's time goes on a pool with
/// <see cref="PrologPool.DefaultOptions"/>: the whole transaction, the guest's work inside it, the commit (the pool's
/// <c>cowwasm.pool.commit.duration</c>) and its dirty pages, medians of 60; then the same goal on a plain instance.
/// </summary>
internal static class TreallaWriteProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        int replicas = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 16;
        using WasmModule module = await TreallaGuest.LoadAsync().ConfigureAwait(false);
        await using PrologPool pool = PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = replicas });
        Trealla.WarmUp(pool, "true");
        var commits = new List<double>();
        var dirty = new List<long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CowWasm.Pool.GuestPool.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == "cowwasm.pool.commit.duration")
            {
                commits.Add(value);
            }
        });
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "cowwasm.pool.commit.dirty_pages")
            {
                dirty.Add(value);
            }
        });
        listener.Start();
        var totals = new List<double>();
        var works = new List<double>();
        for (int n = 0; n < 60; n++)
        {
            long start = Stopwatch.GetTimestamp();
            double work = 0;
            int k = n;
            await pool.WriteAsync(p =>
            {
                long w = Stopwatch.GetTimestamp();
                p.QueryOnce($"assertz((w({k})))").ThrowIfError();
                work = Stopwatch.GetElapsedTime(w).TotalMicroseconds;
                return 0;
            });
            totals.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            works.Add(work);
        }

        static double Med(List<double> values) => values.Order().ElementAt(values.Count / 2);
        Console.WriteLine($"{replicas} replicas: transaction {Med(totals):F0} us; guest work {Med(works):F0} us; " +
                          $"commit {Med(commits) * 1000:F0} us; dirty pages {dirty.Order().ElementAt(dirty.Count / 2)}");
        (IGuestInstance g, PrologInterpreter plain) = Trealla.WarmPlain(module);
        using (g)
        {
            var alone = new List<double>();
            for (int n = 0; n < 60; n++)
            {
                long start = Stopwatch.GetTimestamp();
                plain.QueryOnce($"assertz((w({n})))").ThrowIfError();
                alone.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }

            Console.WriteLine($"plain instance {Med(alone):F0} us");
        }

        return 0;
    }
}
