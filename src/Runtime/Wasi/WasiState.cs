using System.Text;

namespace CowWasm.Runtime.Wasi;

/// <summary>
/// Per-instance WASI state: captured output and open files, both bounded by the configuration. Used by one guest
/// thread at a time. A pool resets it (<see cref="Reset"/>) after every read and after every commit or rollback, so no
/// transaction sees another's files or output.
/// </summary>
public sealed class WasiState
{
    /// <summary>Capture buffers larger than this are released at a reset instead of being kept for reuse.</summary>
    private const int RetainedCapacity = 64 * 1024;

    private const int FirstFileFd = 4;
    private readonly Dictionary<int, OpenFile> _open = [];
    private int _nextFd = FirstFileFd;

    internal WasiState(WasiConfiguration configuration)
    {
        configuration.Validate();
        Configuration = configuration;
    }

    /// <summary>The configuration this state was made from.</summary>
    public WasiConfiguration Configuration { get; }

    /// <summary>Bytes the guest wrote to fd 1.</summary>
    public MemoryStream Stdout { get; } = new();

    /// <summary>Bytes the guest wrote to fd 2.</summary>
    public MemoryStream Stderr { get; } = new();

    /// <summary>Stdout decoded as UTF-8.</summary>
    public string StdoutText => Encoding.UTF8.GetString(Stdout.GetBuffer(), 0, (int)Stdout.Length);

    /// <summary>Stderr decoded as UTF-8.</summary>
    public string StderrText => Encoding.UTF8.GetString(Stderr.GetBuffer(), 0, (int)Stderr.Length);

    /// <summary>Whether output was dropped because a stream reached <see cref="WasiConfiguration.MaxCapturedBytes"/>.</summary>
    public bool OutputTruncated { get; private set; }

    /// <summary>Files open now.</summary>
    public int OpenFileCount => _open.Count;

    /// <summary>Forgets captured output (and the truncation flag); capture buffers grown large are released.</summary>
    public void ClearOutput()
    {
        foreach (MemoryStream stream in new[] { Stdout, Stderr })
        {
            stream.SetLength(0);
            if (stream.Capacity > RetainedCapacity)
            {
                stream.Capacity = 0; // give back what one chatty transaction made it grow to
            }
        }

        OutputTruncated = false;
    }

    /// <summary>Back to the state after instantiation: no output, no open files, file descriptors numbered from 4 again.</summary>
    public void Reset()
    {
        ClearOutput();
        _open.Clear();
        _nextFd = FirstFileFd;
    }

    internal bool HasPreopen => Configuration.Files.Count > 0;

    /// <summary>Appends to a capture stream up to the cap; the rest is dropped and flagged.</summary>
    internal void Capture(MemoryStream stream, ReadOnlySpan<byte> bytes)
    {
        int room = (int)Math.Max(0, Configuration.MaxCapturedBytes - stream.Length);
        if (bytes.Length > room)
        {
            OutputTruncated = true;
            bytes = bytes[..room];
        }

        stream.Write(bytes);
    }

    /// <summary>Opens a file: its descriptor, or -1 when <see cref="WasiConfiguration.MaxOpenFiles"/> are open.</summary>
    internal int Open(byte[] content)
    {
        if (_open.Count >= Configuration.MaxOpenFiles)
        {
            return -1;
        }

        int fd = _nextFd;
        while (_open.ContainsKey(fd))
        {
            fd = fd == int.MaxValue ? FirstFileFd : fd + 1; // never wraps into stdio or the preopen
        }

        _nextFd = fd == int.MaxValue ? FirstFileFd : fd + 1;
        _open[fd] = new OpenFile(content);
        return fd;
    }

    internal OpenFile? File(int fd) => _open.GetValueOrDefault(fd);

    internal bool Close(int fd) => _open.Remove(fd);

    internal sealed class OpenFile(byte[] content)
    {
        public byte[] Content { get; } = content;

        public long Position { get; set; }
    }
}
