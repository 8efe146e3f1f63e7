using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

internal static unsafe partial class Libc
{
    // ioctl and syscall are variadic in C. On x86-64 SysV, integer and pointer arguments of a variadic call
    // travel in the same registers as a fixed-arity call, so these fixed-arity imports are ABI-compatible.
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, void* arg);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, long arg1);

    public const long SYS_userfaultfd = 323;

    /// <summary>ioctl that throws on failure; returns the (non-negative) result.</summary>
    public static int Ioctl(SafeFdHandle fd, ulong request, void* arg, string name)
    {
        using var _ = fd.Use(out int raw);
        int result;
        do
        {
            result = ioctl(raw, request, arg);
        }
        while (result < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR);

        Errno.Check(result, name, n => $"ioctl({n})");
        return result;
    }

    /// <summary>ioctl returning -errno instead of throwing, for feature probes.</summary>
    public static int TryIoctl(SafeFdHandle fd, ulong request, void* arg)
    {
        using var _ = fd.Use(out int raw);
        int result = ioctl(raw, request, arg);
        return result < 0 ? -Marshal.GetLastPInvokeError() : result;
    }

    /// <summary>The userfaultfd(2) syscall (glibc has no wrapper).</summary>
    public static SafeFdHandle Userfaultfd(long flags)
    {
        long fd = syscall(SYS_userfaultfd, flags);
        Errno.Check(fd, flags, f => $"userfaultfd(flags=0x{f:x})");
        return new SafeFdHandle((int)fd);
    }
}
