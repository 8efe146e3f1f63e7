using CowWasm.Memory;

namespace CowWasm.Runtime;

/// <summary>An instance's own memory: a view of a private base. The default.</summary>
public sealed class StandaloneMemory : ILinearMemory
{
    private readonly PageBase _base;
    private readonly CowView _view;

    /// <summary>
    /// Maps <paramref name="initialPageCount"/> zero pages in a reservation of <paramref name="maxPageCount"/> pages, or
    /// of <paramref name="reservedBytes"/> if that is larger.
    /// </summary>
    public StandaloneMemory(long initialPageCount, long maxPageCount, long reservedBytes = 0)
    {
        _base = PageBase.Create(initialPageCount, "cowwasm-instance");
        try
        {
            _view = new CowView(_base, initialPageCount, maxPageCount, reservedBytes);
        }
        catch
        {
            _base.Dispose();
            throw;
        }
    }

    /// <summary>A factory for <see cref="LinearMemoryFactory"/>.</summary>
    public static ILinearMemory Create(long initialPageCount, long maxPageCount, long reservedBytes) =>
        new StandaloneMemory(initialPageCount, maxPageCount, reservedBytes);

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
