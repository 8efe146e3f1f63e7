using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>
/// A userfaultfd in write-protect <b>async</b> mode: the kernel resolves write faults itself (no handler
/// thread) and records them as "written" for PAGEMAP_SCAN. Needs Linux ≥ 6.7
/// (UFFD_FEATURE_WP_ASYNC). Closing the fd unregisters every range it registered.
/// </summary>
internal sealed unsafe class Userfaultfd : IDisposable
{
    private const ulong UFFD_API = 0xAA;
    private const ulong UFFDIO_API = 0xC018AA3F;
    private const ulong UFFDIO_REGISTER = 0xC020AA00;
    private const ulong UFFDIO_WRITEPROTECT = 0xC018AA06;
    private const ulong UFFDIO_REGISTER_MODE_WP = 1 << 1;
    private const ulong UFFDIO_WRITEPROTECT_MODE_WP = 1;
    private const ulong UFFD_FEATURE_WP_UNPOPULATED = 1 << 13;
    private const ulong UFFD_FEATURE_WP_ASYNC = 1 << 15;
    private const long UFFD_USER_MODE_ONLY = 1;

    private readonly SafeFdHandle _fd;

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioApi
    {
        public ulong Api, Features, Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioRegister
    {
        public ulong Start, Len, Mode, Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioWriteprotect
    {
        public ulong Start, Len, Mode;
    }

    private Userfaultfd(SafeFdHandle fd) => _fd = fd;

    /// <summary>Opens a userfaultfd and negotiates WP_ASYNC | WP_UNPOPULATED.</summary>
    public static Userfaultfd OpenWriteProtectAsync()
    {
        SafeFdHandle fd = Libc.Userfaultfd((long)(OpenFlags.O_CLOEXEC | OpenFlags.O_NONBLOCK) | UFFD_USER_MODE_ONLY);
        try
        {
            var api = new UffdioApi { Api = UFFD_API, Features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
            // SAFETY: api is a local the kernel reads and writes during the call.
            int result = Libc.TryIoctl(fd, UFFDIO_API, &api);
            if (result < 0)
            {
                throw new KernelFeatureNotSupportedException(KernelFeature.UserfaultfdWriteProtectAsync,
                    $"UFFDIO_API(features=WP_ASYNC|WP_UNPOPULATED) failed: {Errno.Name(-result)}");
            }

            return new Userfaultfd(fd);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Registers [start, start+byteLength) for write-protect tracking.</summary>
    public void RegisterWriteProtect(nint start, long byteLength)
    {
        var reg = new UffdioRegister { Start = (ulong)start, Len = (ulong)byteLength, Mode = UFFDIO_REGISTER_MODE_WP };
        // SAFETY: reg is a local that outlives the call.
        Libc.Ioctl(_fd, UFFDIO_REGISTER, &reg, "UFFDIO_REGISTER");
    }

    /// <summary>Write-protects [start, start+byteLength): the range counts as clean until written.</summary>
    public void WriteProtect(nint start, long byteLength)
    {
        var wp = new UffdioWriteprotect { Start = (ulong)start, Len = (ulong)byteLength, Mode = UFFDIO_WRITEPROTECT_MODE_WP };
        // SAFETY: wp is a local that outlives the call.
        Libc.Ioctl(_fd, UFFDIO_WRITEPROTECT, &wp, "UFFDIO_WRITEPROTECT");
    }

    public void Dispose() => _fd.Dispose();
}
