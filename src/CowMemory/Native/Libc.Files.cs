using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>open(2) flags (x86-64 values).</summary>
[Flags]
internal enum OpenFlags
{
    O_RDONLY = 0,
    O_WRONLY = 1,
    O_RDWR = 2,
    O_NONBLOCK = 0x800,
    O_CLOEXEC = 0x80000,
}

/// <summary>memfd_create flags.</summary>
[Flags]
internal enum MemfdFlags : uint
{
    MFD_CLOEXEC = 1,
    MFD_ALLOW_SEALING = 2,
}

internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, MemfdFlags flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, OpenFlags flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pread(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pwrite(int fd, void* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, byte* statBuffer);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lstat(string path, byte* statBuffer);

    /// <summary>Whether <paramref name="path"/> itself (not a link's target) is a Unix socket (x86-64 st_mode at byte 24).</summary>
    public static bool IsSocketFile(string path)
    {
        byte* stat = stackalloc byte[144];
        return lstat(path, stat) == 0 && (*(uint*)(stat + 24) & 0xF000) == 0xC000; // S_IFMT, S_IFSOCK
    }

    /// <summary>This process's effective user id.</summary>
    public static uint EffectiveUserId => geteuid();

    /// <summary>
    /// Whether the file behind <paramref name="fd"/> belongs to this process's user and nobody else can write it
    /// (x86-64 <c>struct stat</c>: st_mode at byte 24, st_uid at 28).
    /// </summary>
    public static bool IsPrivateToUs(SafeFdHandle fd)
    {
        using var _ = fd.Use(out int raw);
        byte* stat = stackalloc byte[144];
        Errno.Check(fstat(raw, stat), raw, f => $"fstat(fd={f})");
        uint mode = *(uint*)(stat + 24), uid = *(uint*)(stat + 28);
        return uid == geteuid() && (mode & 0x12) == 0; // 0o022: group or others may write
    }

    public static void Fsync(SafeFdHandle fd)
    {
        using var _ = fd.Use(out int raw);
        Errno.Check(fsync(raw), raw, f => $"fsync(fd={f})");
    }

    /// <summary>fdatasync on a .NET file handle (the BCL's FlushToDisk is fsync: it also writes timestamps).</summary>
    public static void Fdatasync(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int raw = (int)file.DangerousGetHandle(); // SAFETY: the reference taken above keeps the descriptor open
            Errno.Check(fdatasync(raw), raw, f => $"fdatasync(fd={f})");
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>A memfd, close-on-exec, that may be sealed (<see cref="SealAgainstShrinking"/>).</summary>
    public static SafeFdHandle MemfdCreate(string name)
    {
        int fd = memfd_create(name, MemfdFlags.MFD_CLOEXEC | MemfdFlags.MFD_ALLOW_SEALING);
        Errno.Check(fd, name, n => $"memfd_create(name=\"{n}\", MFD_CLOEXEC | MFD_ALLOW_SEALING)");
        return new SafeFdHandle(fd);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    private const int F_ADD_SEALS = 1033;
    private const int F_SEAL_SHRINK = 0x0002;

    /// <summary>
    /// Seals a memfd against shrinking (<c>F_SEAL_SHRINK</c>): from now on no process, through any descriptor, can
    /// truncate it below its size, so mappings of it never fault with SIGBUS for lack of a page. It may still grow.
    /// </summary>
    public static void SealAgainstShrinking(SafeFdHandle memfd)
    {
        using var _ = memfd.Use(out int raw);
        Errno.Check(fcntl(raw, F_ADD_SEALS, F_SEAL_SHRINK), raw, f => $"fcntl({f}, F_ADD_SEALS, F_SEAL_SHRINK)");
    }

    /// <summary>A new read-only descriptor of the file <paramref name="fd"/> is open on (through /proc/self/fd).</summary>
    public static SafeFdHandle ReopenReadOnly(SafeFdHandle fd)
    {
        using var _ = fd.Use(out int raw);
        return Open($"/proc/self/fd/{raw}", OpenFlags.O_RDONLY);
    }

    public static SafeFdHandle Open(string path, OpenFlags flags)
    {
        int fd = open(path, flags | OpenFlags.O_CLOEXEC);
        Errno.Check(fd, (path, flags), s => $"open(\"{s.path}\", {s.flags})");
        return new SafeFdHandle(fd);
    }

    public static void Ftruncate(SafeFdHandle fd, long length)
    {
        using var _ = fd.Use(out int raw);
        Errno.Check(ftruncate(raw, length), length, l => $"ftruncate(len={l})");
    }

    /// <summary>pread until <paramref name="count"/> bytes have been read; a short file is an error.</summary>
    public static void PreadExactly(SafeFdHandle fd, byte* buffer, long count, long offset) =>
        TransferExactly(fd, buffer, count, offset, write: false);

    /// <summary>pwrite until <paramref name="count"/> bytes have been written.</summary>
    public static void PwriteExactly(SafeFdHandle fd, byte* buffer, long count, long offset) =>
        TransferExactly(fd, buffer, count, offset, write: true);

    private static void TransferExactly(SafeFdHandle fd, byte* buffer, long count, long offset, bool write)
    {
        using var _ = fd.Use(out int raw);
        while (count > 0)
        {
            nuint chunk = (nuint)Math.Min(count, MaxIo);
            nint n = write ? pwrite(raw, buffer, chunk, offset) : pread(raw, buffer, chunk, offset);
            if (n < 0 && Marshal.GetLastPInvokeError() == Errno.EINTR)
            {
                continue;
            }

            Errno.Check(n, (write, count, offset), s => $"{(s.write ? "pwrite" : "pread")}(len={s.count}, off={s.offset})");
            if (n == 0)
            {
                throw new EndOfStreamException(
                    $"{(write ? "pwrite" : "pread")}(len={count}, off={offset}) made no progress (end of file?).");
            }

            buffer += n;
            count -= n;
            offset += n;
        }
    }

    public static void WriteAll(SafeFdHandle fd, ReadOnlySpan<byte> bytes, string what)
    {
        using var _ = fd.Use(out int raw);
        fixed (byte* p = bytes)
        {
            nint n = write(raw, p, (nuint)bytes.Length);
            Errno.Check(n, what, w => $"write({w})");
            if (n != bytes.Length)
            {
                throw new IOException($"write({what}) wrote {n} of {bytes.Length} bytes.");
            }
        }
    }

    // Linux transfers at most 0x7ffff000 bytes per read/write call.
    private const long MaxIo = 0x7ffff000;
}
