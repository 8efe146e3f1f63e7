using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Tests.Prolog;

/// <summary>
/// The Trealla guest, through the same cached setup as <c>bench trealla-setup</c> (test.sh runs that first, so
/// this is a cache hit; on a cold cache it downloads and compiles, which takes minutes).
/// </summary>
public sealed class TreallaFixture : IAsyncLifetime
{
    private WasmModule? _module;

    public WasmModule Module => _module ?? throw new InvalidOperationException("The fixture is not initialized.");

    public async Task InitializeAsync() => _module = await TreallaGuest.LoadAsync();

    public Task DisposeAsync()
    {
        _module?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A plain instance with an initialized interpreter (dispose the instance).</summary>
    public (WasmInstance Guest, PrologInterpreter Prolog) Plain()
    {
        WasmInstance guest = Module.Instantiate(TreallaGuest.CreateLinker(Module.Info), TreallaGuest.DefaultInstanceOptions);
        try
        {
            return (guest, PrologInterpreter.Initialize(guest));
        }
        catch
        {
            guest.Dispose();
            throw;
        }
    }

    /// <summary>The pool configurations the Prolog pool tests run under: every strategy, and <see cref="PrologPool.DefaultOptions"/>.</summary>
    public static TheoryData<string> Configs => [.. s_configs.Keys];

    private static readonly Dictionary<string, Func<PoolOptions>> s_configs = new()
    {
        ["FullCopy"] = () => Options(SyncStrategyKind.FullCopy, ReplicaResetMode.Madvise),
        ["DirtyCopy"] = () => Options(SyncStrategyKind.DirtyCopy, ReplicaResetMode.Madvise),
        ["SharedBase/Madvise"] = () => Options(SyncStrategyKind.SharedBase, ReplicaResetMode.Madvise),
        ["SharedBase/KeepResident"] = () => Options(SyncStrategyKind.SharedBase, ReplicaResetMode.KeepResident),
        ["DefaultOptions"] = () => PrologPool.DefaultOptions,
    };

    private static PoolOptions Options(SyncStrategyKind strategy, ReplicaResetMode reset) => new()
    {
        Sync = new SyncOptions { Strategy = strategy, ResetMode = reset },
        Instance = TreallaGuest.DefaultInstanceOptions,
    };

    /// <summary>A pool of one of the <see cref="Configs"/>.</summary>
    public PrologPool Pool(string config, int replicas = 2, ReadIsolation isolation = ReadIsolation.PerRead) =>
        PrologPool.Create(Module, s_configs[config]() with { ReplicaCount = replicas, Isolation = isolation });

    public PrologPool Pool(SyncStrategyKind strategy, int replicas = 2, ReplicaResetMode reset = ReplicaResetMode.Madvise) =>
        PrologPool.Create(Module, new PoolOptions
        {
            ReplicaCount = replicas,
            Sync = new SyncOptions { Strategy = strategy, ResetMode = reset },
            Instance = TreallaGuest.DefaultInstanceOptions,
        });
}

[CollectionDefinition(Name)]
public sealed class TreallaCollection : ICollectionFixture<TreallaFixture>
{
    public const string Name = "Trealla";
}
