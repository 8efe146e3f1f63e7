using CowWasm.Memory;
using CowWasm.Memory.Sync;
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
    private IGuestModule? _wasmtime;

    /// <summary>Trealla on the native backend.</summary>
    public WasmModule Module => _module ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>Trealla on the Wasmtime backend (rewritten with the store barrier).</summary>
    public IGuestModule Wasmtime => _wasmtime ?? throw new InvalidOperationException("The fixture is not initialized.");

    public IGuestModule On(GuestRuntime runtime) => runtime == GuestRuntime.Native ? Module : Wasmtime;

    public async Task InitializeAsync()
    {
        _module = await TreallaGuest.LoadAsync();
        _wasmtime = await TreallaGuest.LoadAsync(GuestRuntime.Wasmtime);
    }

    public Task DisposeAsync()
    {
        _module?.Dispose();
        _wasmtime?.Dispose();
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

    /// <summary>
    /// The pool configurations the Prolog pool tests run under: every strategy, and <see cref="PrologPool.DefaultOptions"/>,
    /// on the native backend, and the same prefixed <c>Wasmtime/</c> on Wasmtime.
    /// </summary>
    public static TheoryData<string> Configs => [.. s_configs.Keys, .. s_configs.Keys.Select(k => WasmtimePrefix + k)];

    private const string WasmtimePrefix = "Wasmtime/";

    private (IGuestModule Module, Func<PoolOptions> Options) Config(string config) => config.StartsWith(WasmtimePrefix, StringComparison.Ordinal)
        ? (Wasmtime, s_configs[config[WasmtimePrefix.Length..]])
        : (Module, s_configs[config]);

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
    public PrologPool Pool(string config, int replicas = 2, ReadIsolation isolation = ReadIsolation.PerRead)
    {
        (IGuestModule module, Func<PoolOptions> options) = Config(config);
        return PrologPool.Create(module, options() with { ReplicaCount = replicas, Isolation = isolation });
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
