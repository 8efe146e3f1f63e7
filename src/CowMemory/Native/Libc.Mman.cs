using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>Memory-mapping flags (<c>sys/mman.h</c>, x86-64 values).</summary>
[Flags]
internal enum Prot
{
    PROT_NONE = 0,
    PROT_READ = 1,
    PROT_WRITE = 2,
}

/// <summary>mmap flags (x86-64 values).</summary>
[Flags]
internal enum MapFlags
{
    MAP_SHARED = 0x01,
    MAP_PRIVATE = 0x02,
    MAP_FIXED = 0x10,
    MAP_ANONYMOUS = 0x20,
    MAP_NORESERVE = 0x4000,
}

/// <summary>madvise advice values.</summary>
internal enum Advice
{
    MADV_DONTNEED = 4,

    /// <summary>Fault the range in writable without writing (Linux ≥ 5.14): on a private file mapping, breaks CoW.</summary>
    MADV_POPULATE_WRITE = 23,
}

internal static unsafe partial class Libc
{
    public static readonly nint MapFailed = -1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint mmap(nint addr, nuint length, Prot prot, MapFlags flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(nint addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mprotect(nint addr, nuint length, Prot prot);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint addr, nuint length, Advice advice);

    /// <summary>mmap that throws <see cref="NativeCallException"/> naming length, protection and flags.</summary>
    public static nint Mmap(nint addr, long length, Prot prot, MapFlags flags, int fd, long offset)
    {
        nint result = mmap(addr, (nuint)length, prot, flags, fd, offset);
        if (result == MapFailed)
        {
            throw new NativeCallException(
                $"mmap(addr=0x{addr:x}, len={length}, {prot}, {flags}, fd={fd}, off={offset})",
                Marshal.GetLastPInvokeError());
        }

        return result;
    }

    public static void Munmap(nint addr, long length) =>
        Errno.Check(munmap(addr, (nuint)length), (addr, length), s => $"munmap(addr=0x{s.addr:x}, len={s.length})");

    public static void Mprotect(nint addr, long length, Prot prot) =>
        Errno.Check(mprotect(addr, (nuint)length, prot), (addr, length, prot),
            s => $"mprotect(addr=0x{s.addr:x}, len={s.length}, {s.prot})");

    public static void Madvise(nint addr, long length, Advice advice) =>
        Errno.Check(madvise(addr, (nuint)length, advice), (addr, length, advice),
            s => $"madvise(addr=0x{s.addr:x}, len={s.length}, {s.advice})");

    /// <summary>munmap for release paths: reports failure by return value instead of throwing.</summary>
    public static bool TryMunmap(nint addr, long length) => munmap(addr, (nuint)length) == 0;
}
