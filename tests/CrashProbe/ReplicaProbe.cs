using System.Globalization;
using System.Security.Cryptography;
using CowWasm.Pool;
using CowWasm.Replication;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using NATS.Client.Core;

namespace CowWasm.CrashProbe;

/// <summary>A CommitFollower of the kv test guest in its own process, so a test can SIGKILL it mid-stream.</summary>
internal static class ReplicaProbe
{
    public static async Task<int> RunAsync(string url, string name, string kvWat, string cacheDir)
    {
        using WasmModule module = WasmModule.Load(WatAssembler.Assemble(File.ReadAllText(kvWat)), new ArtifactOptions { CacheDirectory = cacheDir });
        // The kv guest's import, as the tests' KvGuest defines it.
        Linker linker = new Linker().Define("env", "fail", [], [], (caller, a, r) => throw new InvalidOperationException("the host refused"));
        await using var nats = new NatsConnection(new NatsOpts { Url = url, Name = "replica-probe" });
        await using CommitFollower follower = await CommitFollower.StartAsync(module, linker, nats, new ReplicationOptions { Name = name },
            new PoolOptions { ReplicaCount = 1 });
        Probe.Say($"started at {follower.SnapshotSequence}");
        follower.Applied += sequence => Probe.Say($"applied {sequence}");
        while (await Console.In.ReadLineAsync() is { } line && line != "exit")
        {
            long target = long.Parse(line, CultureInfo.InvariantCulture);
            await follower.WaitForAsync(target).WaitAsync(TimeSpan.FromSeconds(60));
            FollowerRead<string> read = await follower.ReadAsync(g =>
                ValueTask.FromResult(Convert.ToHexStringLower(SHA256.HashData(g.Memory!.ReadSpan(0, checked((int)g.Memory.ByteLength))))));
            Probe.Say($"seq {read.Sequence} sha256 {read.Result}");
        }

        return 0;
    }
}
