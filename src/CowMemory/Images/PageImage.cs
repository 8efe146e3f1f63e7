namespace CowWasm.Memory.Images;

/// <summary>
/// An opened page-image file: its header and its pages as a read-only <see cref="PageBase"/> mapping the file.
/// Hand the base to <see cref="Sync.SyncStrategy.Create(Sync.SyncOptions, PageBase?)"/> (<see cref="TakeBase"/>) so the leader
/// and replicas are MAP_PRIVATE views of the file itself. The file is never written; the first commit copies the
/// image into memory. Not thread-safe.
/// </summary>
public sealed class PageImage : IDisposable
{
    private PageBase? _base;

    internal PageImage(string path, PageImageHeader header, PageBase image)
    {
        Path = path;
        Header = header;
        _base = image;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The header.</summary>
    public PageImageHeader Header { get; }

    /// <summary>Hashes the page data (O(size); it reads every page) and compares it with the header's data hash.</summary>
    /// <exception cref="PageImageFormatException">The data does not match (the file was modified or damaged).</exception>
    public void VerifyData()
    {
        PageBase image = _base ?? throw new InvalidOperationException("The base was taken; verify before taking it.");
        if (!PageImageFile.HashPages(image, Header.PageCount).AsSpan().SequenceEqual(Header.DataHash))
        {
            throw new PageImageFormatException(Path, "the page data does not match its checksum (modified or damaged).");
        }
    }

    /// <summary>
    /// Transfers the read-only base to the caller (who disposes it, or gives it to a strategy that does).
    /// </summary>
    public PageBase TakeBase()
    {
        PageBase image = _base ?? throw new InvalidOperationException("The base was already taken.");
        _base = null;
        return image;
    }

    /// <summary>Closes the file unless the base was taken.</summary>
    public void Dispose()
    {
        _base?.Dispose();
        _base = null;
    }
}
