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

    public static SafeFdHandle MemfdCreate(string name)
    {
        int fd = memfd_create(name, MemfdFlags.MFD_CLOEXEC);
        Errno.Check(fd, name, n => $"memfd_create(name=\"{n}\", MFD_CLOEXEC)");
        return new SafeFdHandle(fd);
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
