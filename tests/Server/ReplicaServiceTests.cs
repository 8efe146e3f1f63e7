using System.Text.Json;
using CowWasm.Runtime;
using CowWasm.Server;
using CowWasm.Tests.Prolog;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Server;

/// <summary>
/// A leader service replicating through a real nats-server (<c>--replicate-to</c>) and a replica service on "another
/// host" (<c>--follow-nats</c>): it answers from its own pool, reports the commit it is at, refuses writes, and a replica
/// started later begins from the snapshot the leader published.
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class ReplicaServiceTests(TreallaFixture trealla)
{
    private static async Task<JsonElement> HealthAsync(RunningServer s)
    {
        using HttpResponseMessage health = await s.Http.GetAsync("/health");
        return JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
    }

    private static async Task UntilSequenceAsync(RunningServer replica, long sequence)
    {
        for (int i = 0; i < 600 && (await HealthAsync(replica)).GetProperty("sequence").GetInt64() < sequence; i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(sequence, (await HealthAsync(replica)).GetProperty("sequence").GetInt64());
    }

    [Theory]
    [InlineData(GuestRuntime.Native, GuestRuntime.Native)]
    [InlineData(GuestRuntime.Wasmtime, GuestRuntime.Wasmtime)]
    [InlineData(GuestRuntime.Native, GuestRuntime.Wasmtime)] // deltas and snapshots name the module, not the backend
    public async Task AReplicaService_AnswersFromTheLeadersCommits_AndRefusesWrites(GuestRuntime leaderRuntime, GuestRuntime replicaRuntime)
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using RunningServer leader = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, ReplicateTo = nats.Url, ReplicationName = "kb" }, leaderRuntime);
        await leader.PostAsync("/consult", new { text = ":- dynamic(city/1). city(oslo)." });
        await using RunningServer replica = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 2, FollowNats = nats.Url, ReplicationName = "kb" }, replicaRuntime);

        await leader.PostAsync("/assert", new { clause = "city(rome)" });
        long committed = (await HealthAsync(leader)).GetProperty("sequence").GetInt64();
        await UntilSequenceAsync(replica, committed);
        Assert.Equal(["{\"atom\":\"oslo\"}", "{\"atom\":\"rome\"}"], await replica.XsAsync("city(X)"));

        (int status, JsonElement body) = await replica.PostAsync("/assert", new { clause = "city(paris)" });
        Assert.Equal((409, "read_only_follower"), (status, body.GetProperty("error").GetString()));
        JsonElement health = await HealthAsync(replica);
        Assert.Equal(("ok", "replica"), (health.GetProperty("health").GetString(), health.GetProperty("backend").GetString()));

        // POST /snapshot on the leader publishes one; a replica started after it begins there.
        (status, body) = await leader.PostRawAsync("/snapshot", []);
        Assert.Equal(200, status);
        long snapshot = body.GetProperty("published_sequence").GetInt64();
        Assert.Equal(committed, snapshot);
        await leader.PostAsync("/assert", new { clause = "city(lima)" });
        await using RunningServer late = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, FollowNats = nats.Url, ReplicationName = "kb" }, replicaRuntime);
        await UntilSequenceAsync(late, committed + 1);
        Assert.Equal(["{\"atom\":\"oslo\"}", "{\"atom\":\"rome\"}", "{\"atom\":\"lima\"}"], await late.XsAsync("city(X)"));
        Assert.Equal(committed + 1, (await HealthAsync(leader)).GetProperty("published_sequence").GetInt64());
    }

    [Fact]
    public void ReplicationOptions_ThatContradictEachOther_AreRefused()
    {
        Assert.Contains("--follow-nats", Assert.Throws<ArgumentException>(() =>
            ServerOptions.Parse(["--follow-nats", "nats://127.0.0.1:4222", "--replicate-to", "nats://127.0.0.1:4222"])).Message);
        Assert.Contains("--replication-name", Assert.Throws<ArgumentException>(() =>
            ServerOptions.Parse(["--replicate-to", "nats://127.0.0.1:4222", "--replication-name", "a.b"])).Message);
        Assert.Contains("--replicate-to", Assert.Throws<ArgumentException>(() =>
            ServerOptions.Parse(["--replicate-to", "nats://127.0.0.1:4222", "--backend", "locked"])).Message);
    }

    [Fact]
    public void TheRuntimeOption_DefaultsToWasmtime_TakesNative_AndNamesABadValue()
    {
        Assert.Equal(GuestRuntime.Wasmtime, ServerOptions.Parse([]).Runtime);
        Assert.Equal(GuestRuntime.Native, ServerOptions.Parse(["--runtime", "native"]).Runtime);
        Assert.Equal(GuestRuntime.Wasmtime, ServerOptions.Parse(["--runtime", "Wasmtime"]).Runtime);
        Assert.Contains("--runtime: \"v8\"", Assert.Throws<ArgumentException>(() => ServerOptions.Parse(["--runtime", "v8"])).Message);
        Assert.Contains("--runtime: \"1\"", Assert.Throws<ArgumentException>(() => ServerOptions.Parse(["--runtime", "1"])).Message);
    }

    [Fact]
    public void TheDurabilityOptions_DefaultToALogInTheUsersStateDirectory()
    {
        ServerOptions defaults = ServerOptions.Parse([]);
        Assert.Equal(CowWasm.Pool.Durability.Log, defaults.Durability);
        Assert.EndsWith(Path.Combine("cowwasm", "prolog"), defaults.ResolvedDataDirectory);
        Assert.True(Path.IsPathRooted(defaults.ResolvedDataDirectory));
        ServerOptions chosen = ServerOptions.Parse(["--durability", "none", "--data-dir", "kb-data", "--replication-name", "kb"]);
        Assert.Equal((CowWasm.Pool.Durability.None, Path.GetFullPath("kb-data")), (chosen.Durability, chosen.ResolvedDataDirectory));
        Assert.EndsWith(Path.Combine("cowwasm", "kb"), ServerOptions.Parse(["--replication-name", "kb"]).ResolvedDataDirectory);
        Assert.Contains("--durability: \"fsync\"", Assert.Throws<ArgumentException>(() => ServerOptions.Parse(["--durability", "fsync"])).Message);
    }
}
