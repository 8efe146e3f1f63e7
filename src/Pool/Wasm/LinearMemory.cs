using CowWasm.Memory;

namespace CowWasm.Pool.Wasm;

/// <summary>
/// Where an instance's linear memory lives: memory-engine memory in a reservation that never moves.
/// Sizes are in 4 KiB pages (<see cref="Pages.Size"/>); one Wasm page is <see cref="WasmPageSize"/> bytes.
/// </summary>
public interface ILinearMemory : IDisposable
{
    /// <summary>The mapped memory. Its pointer is the guest's address 0.</summary>
    PageMemory Memory { get; }

    /// <summary>Grows to <paramref name="pageCount"/> 4 KiB pages; false makes the guest's memory.grow return -1.</summary>
    bool TryGrow(long pageCount);

    /// <summary>Bytes in a Wasm page.</summary>
    const int WasmPageSize = 65536;

    /// <summary>4 KiB pages in a Wasm page.</summary>
    const int PagesPerWasmPage = WasmPageSize / Pages.Size;
}

/// <summary>Creates the linear memory for a new instance: sizes in 4 KiB pages.</summary>
public delegate ILinearMemory LinearMemoryFactory(long initialPageCount, long maxPageCount);

/// <summary>An instance's own memory: a view of a private base. The default.</summary>
public sealed class StandaloneMemory : ILinearMemory
{
    private readonly PageBase _base;
    private readonly CowView _view;

    /// <summary>Maps <paramref name="initialPageCount"/> zero pages in a reservation of <paramref name="maxPageCount"/>.</summary>
    public StandaloneMemory(long initialPageCount, long maxPageCount)
    {
        _base = PageBase.Create(initialPageCount, "cowwasm-instance");
        try
        {
            _view = new CowView(_base, initialPageCount, maxPageCount);
        }
        catch
        {
            _base.Dispose();
            throw;
        }
    }

    /// <summary>A factory for <see cref="LinearMemoryFactory"/>.</summary>
    public static ILinearMemory Create(long initialPageCount, long maxPageCount) => new StandaloneMemory(initialPageCount, maxPageCount);

    /// <inheritdoc/>
    public PageMemory Memory => _view;

    /// <inheritdoc/>
    public bool TryGrow(long pageCount)
    {
        if (pageCount > _view.MaxPageCount)
        {
            return false;
        }

        _base.Grow(pageCount);
        _view.Resize(pageCount);
        return true;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _view.Dispose();
        _base.Dispose();
    }
}

/// <summary>
/// The leader side of a <see cref="SyncStrategy"/>: the instance's memory is the strategy's leader and grows
/// through <see cref="SyncStrategy.GrowLeader"/>. Replicas of the strategy can then host clones of the instance.
/// </summary>
/// <remarks>
/// A <see cref="SyncStrategy.Rollback"/> that undoes growth shrinks the leader: call
/// <see cref="IGuestInstance.RefreshMemorySize"/> on the instance afterwards (and restore its globals), or the
/// guest would address pages that are no longer mapped. Likewise call it on clones after a commit grew them.
/// </remarks>
public sealed class LeaderMemory : ILinearMemory
{
    /// <summary>Creates the strategy with the instance's initial size and reservation.</summary>
    public LeaderMemory(SyncOptions options, long initialPageCount, long maxPageCount)
    {
        ArgumentNullException.ThrowIfNull(options);
        Strategy = SyncStrategy.Create(options with { InitialPageCount = initialPageCount, MaxPageCount = maxPageCount });
    }

    /// <summary>Leads an existing strategy (e.g. one created over a snapshot's image), which it then owns.</summary>
    public LeaderMemory(SyncStrategy strategy) => Strategy = strategy ?? throw new ArgumentNullException(nameof(strategy));

    /// <summary>A factory for the given strategy options.</summary>
    public static LinearMemoryFactory For(SyncOptions options) => (initial, max) => new LeaderMemory(options, initial, max);

    /// <summary>The strategy this memory leads.</summary>
    public SyncStrategy Strategy { get; }

    /// <inheritdoc/>
    public PageMemory Memory => Strategy.Leader;

    /// <inheritdoc/>
    public bool TryGrow(long pageCount)
    {
        if (pageCount > Strategy.Options.MaxPageCount)
        {
            return false;
        }

        Strategy.GrowLeader(pageCount);
        return true;
    }

    /// <summary>Disposes the strategy and every replica it made.</summary>
    public void Dispose() => Strategy.Dispose();
}

/// <summary>
/// A replica of a <see cref="LeaderMemory"/>'s strategy as a clone's memory. A replica follows the leader's
/// length at commits. memory.grow inside a read grows it as scratch, which the reset after the read drops.
/// </summary>
public sealed class ReplicaMemory(Replica replica) : ILinearMemory
{
    /// <summary>The replica.</summary>
    public Replica Replica { get; } = replica ?? throw new ArgumentNullException(nameof(replica));

    /// <inheritdoc/>
    public PageMemory Memory => Replica.Memory;

    /// <summary>
    /// Grows the replica for the rest of the read (scratch; the reset after the read cuts it back to the committed
    /// length). False beyond the strategy's maximum.
    /// </summary>
    public bool TryGrow(long pageCount)
    {
        if (pageCount > Replica.Owner.Options.MaxPageCount)
        {
            return false;
        }

        Replica.Owner.GrowReplica(Replica, pageCount);
        return true;
    }

    /// <summary>Disposes the replica.</summary>
    public void Dispose() => Replica.Dispose();
}
