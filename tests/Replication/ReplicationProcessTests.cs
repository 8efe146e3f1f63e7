using System.Security.Cryptography;
using CowWasm.Pool;
using CowWasm.Replication;
using CowWasm.Tests.Pooling;
using CowWasm.Tests.Support;
using NATS.Client.Core;

namespace CowWasm.Tests.Replication;

/// <summary>A follower host in its own process (tests/CrashProbe, scenario <c>replica</c>), SIGKILLed mid-stream and started again.</summary>
[Collection(nameof(ReplicationCollection))]
public sealed class ReplicationProcessTests
{
    /// <summary>The replica scenario: "started at S", then "applied S" per commit and "seq S sha256 HEX" when asked.</summary>
    private sealed class Replica(string url, string name) : IDisposable
    {
        private readonly ProbeProcess _process = new("started at ", "replica", url, name,
            Path.Combine(AppContext.BaseDirectory, "Guests", "kv.wat"), TestModules.Cache.CacheDirectory!);

        public long StartedAt => long.Parse(_process.Hello["started at ".Length..]);

        /// <summary>Reads "applied N" lines until one reaches <paramref name="sequence"/>.</summary>
        public void WaitApplied(long sequence)
        {
            while (long.Parse(_process.ReadLine("applied ")["applied ".Length..]) < sequence)
            {
            }
        }

        public string StateAt(long sequence)
        {
            _process.WriteLine(sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return _process.ReadLine("seq ");
        }

        public void Kill() => _process.Kill();

        public void Dispose() => _process.Dispose();
    }

    [Fact]
    public async Task AFollowerProcessKilledMidStream_StartsAgain_AndConvergesOnTheLeader()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection, new ReplicationOptions { Name = "process" });
        using var writing = new CancellationTokenSource();
        var random = new Random(5);
        Task writer = Task.Run(async () =>
        {
            while (!writing.IsCancellationRequested)
            {
                int key = random.Next(64);
                long value = random.NextInt64();
                await leader.WriteAsync(g =>
                {
                    KvGuest.Put(g, key, value);
                    return ValueTask.FromResult(0);
                });
                await Task.Delay(1);
            }
        });

        try
        {
            using (var first = new Replica(nats.Url, "process"))
            {
                Assert.Equal(0, first.StartedAt);
                first.WaitApplied(40);
                first.Kill(); // mid-stream: the writer goes on
            }

            await publisher.WaitPublishedAsync(60).WaitAsync(TimeSpan.FromSeconds(60));
            long snapshot = await publisher.PublishSnapshotAsync();
            using var second = new Replica(nats.Url, "process");
            Assert.Equal(snapshot, second.StartedAt);
            second.WaitApplied(snapshot + 30);
            await writing.CancelAsync();
            await writer;
            long last = leader.CommitSequence;
            string expected = leader.Read(g => Convert.ToHexStringLower(SHA256.HashData(g.Memory!.ReadSpan(0, checked((int)g.Memory.ByteLength)))));
            Assert.Equal($"seq {last} sha256 {expected}", second.StateAt(last));
        }
        finally
        {
            await writing.CancelAsync();
            await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
    }
}
