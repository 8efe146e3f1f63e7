using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;

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
