namespace CowWasm.Memory;

/// <summary>
/// A run of consecutive 4 KiB pages: <see cref="StartPage"/> up to (not including) <see cref="EndPage"/>.
/// Page indices are relative to the start of the memory they describe.
/// </summary>
public readonly record struct PageRun(long StartPage, long PageCount)
{
    /// <summary>The first page after the run.</summary>
    public long EndPage => StartPage + PageCount;

    /// <summary>The run's offset in bytes from the start of its memory.</summary>
    public long ByteOffset => StartPage * Pages.Size;

    /// <summary>The run's length in bytes.</summary>
    public long ByteLength => PageCount * Pages.Size;

    /// <inheritdoc/>
    public override string ToString() => $"[{StartPage}, {EndPage})";
}
