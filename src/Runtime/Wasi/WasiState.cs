using System.Text;

namespace CowWasm.Runtime.Wasi;

/// <summary>Per-instance WASI state: captured output and open files. Used by one guest thread at a time.</summary>
public sealed class WasiState
{
    private readonly Dictionary<int, OpenFile> _open = [];
    private int _nextFd = 4;

    internal WasiState(WasiConfiguration configuration) => Configuration = configuration;

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

    /// <summary>Forgets captured output (e.g. between pooled reads).</summary>
    public void ClearOutput()
    {
        Stdout.SetLength(0);
        Stderr.SetLength(0);
    }

    internal bool HasPreopen => Configuration.Files.Count > 0;

    internal int Open(byte[] content)
    {
        int fd = _nextFd++;
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
