using System.Diagnostics;
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
    private sealed class Replica : IDisposable
    {
        private readonly Process _process;

        public Replica(string url, string name)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string arg in new[]
            {
                Path.Combine(AppContext.BaseDirectory, "CowWasm.CrashProbe.dll"), "replica", url, name,
                Path.Combine(AppContext.BaseDirectory, "Guests", "kv.wat"), TestModules.Cache.CacheDirectory!,
            })
            {
                start.ArgumentList.Add(arg);
            }

            _process = Process.Start(start)!;
            string? hello = _process.StandardOutput.ReadLine();
            if (hello?.StartsWith("started at ", StringComparison.Ordinal) != true)
            {
                _process.WaitForExit(TimeSpan.FromSeconds(10));
                Assert.Fail($"The replica process did not start: {hello} {_process.StandardError.ReadToEnd()}");
            }

            StartedAt = long.Parse(hello["started at ".Length..]);
        }

        public long StartedAt { get; }

        /// <summary>Reads "applied N" lines until one reaches <paramref name="sequence"/>.</summary>
        public void WaitApplied(long sequence)
        {
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith("applied ", StringComparison.Ordinal) && long.Parse(line["applied ".Length..]) >= sequence)
                {
                    return;
                }
            }

            Assert.Fail($"The replica process ended: {_process.StandardError.ReadToEnd()}");
        }

        public string StateAt(long sequence)
        {
            _process.StandardInput.WriteLine(sequence);
            _process.StandardInput.Flush();
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith("seq ", StringComparison.Ordinal))
                {
                    return line;
                }
            }

            throw new InvalidOperationException(_process.StandardError.ReadToEnd());
        }

        public void Kill()
        {
            _process.Kill(entireProcessTree: true); // SIGKILL: nothing runs in the follower after this
            _process.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("exit");
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }

            _process.Dispose();
        }
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
