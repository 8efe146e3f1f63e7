namespace CowWasm.Memory.Images;

/// <summary>A page-image file is unusable: bad magic, unknown format version, corrupt header, truncated or damaged data.</summary>
public class PageImageFormatException(string path, string problem, Exception? inner = null)
    : IOException($"'{path}': {problem}", inner)
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong, without the path.</summary>
    public string Problem { get; } = problem;
}
