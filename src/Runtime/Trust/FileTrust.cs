using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Runtime;

/// <summary>
/// Ownership and permission checks for the artifact cache: everything the process will <c>dlopen</c> must belong to
/// the process's user and be writable by nobody else, and the library is checked through the same descriptor it is
/// then loaded from (<c>/proc/self/fd/N</c>, <see cref="Load"/>), so it cannot be swapped between check and load. Linux x86-64 (the
/// <c>struct stat</c> layout is that ABI's). Hand-rolled: the BCL reports a file's mode but not its owner.
/// </summary>
internal static unsafe partial class FileTrust
{
    private const int ORdonly = 0, ONofollow = 0x20000, OCloexec = 0x80000, ELoop = 40, ENoent = 2;
    private const uint SIfmt = 0xF000, SIfreg = 0x8000, SIfdir = 0x4000, SIflnk = 0xA000;
    private const uint GroupOrOtherWrite = 0x12; // 0o022

    /// <summary>The directory mode for everything the cache creates: 0700.</summary>
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>The file mode for the libraries it publishes: 0600.</summary>
    public const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="path"/> (0700) if missing, then checks it like <see cref="CheckDirectory"/>.</summary>
    public static void EnsurePrivateDirectory(string path)
    {
        CreatePrivateDirectory(path);
        CheckDirectory(path);
    }

    /// <summary>Creates <paramref name="path"/> with mode 0700 (no-op if it exists).</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException(LinuxOnly);
        }

        Directory.CreateDirectory(path, PrivateDirectory);
    }

    /// <summary>Sets a file's mode to 0600.</summary>
    public static void MakePrivate(string file)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException(LinuxOnly);
        }

        File.SetUnixFileMode(file, PrivateFile);
    }

    private const string LinuxOnly = "CowWasm runs on Linux x86-64.";

    /// <summary>A directory (not a link to one) owned by this user and not writable by group or others.</summary>
    /// <exception cref="ArtifactTrustException">It is not.</exception>
    public static void CheckDirectory(string path)
    {
        Stat stat;
        if (lstat(path, &stat) != 0)
        {
            throw new ArtifactTrustException(path, $"cannot stat it (errno {Marshal.GetLastPInvokeError()})");
        }

        Check(path, stat, SIfdir, "a directory");
    }

    /// <summary>
    /// Opens a library without following a symbolic link in its last component and checks, through the descriptor,
    /// that it is a regular file; with <paramref name="requirePrivate"/> also that this user owns it and nobody else
    /// can write it. Load it with <see cref="Load"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="ArtifactTrustException">A symbolic link, not a regular file, or (private) foreign or writable by others.</exception>
    public static SafeFileHandle OpenLibrary(string path, bool requirePrivate)
    {
        int fd = open(path, ORdonly | ONofollow | OCloexec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                ENoent => new FileNotFoundException($"No artifact at '{path}'.", path),
                ELoop => new ArtifactTrustException(path, "the library is a symbolic link"),
                _ => new IOException($"Cannot open '{path}' (errno {errno})."),
            };
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            Stat stat;
            if (fstat(fd, &stat) != 0)
            {
                throw new IOException($"Cannot stat '{path}' (errno {Marshal.GetLastPInvokeError()}).");
            }

            if (requirePrivate)
            {
                Check(path, stat, SIfreg, "a regular file");
            }
            else if ((stat.Mode & SIfmt) != SIfreg)
            {
                throw new ArtifactTrustException(path, "not a regular file");
            }

            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static long s_loads;

    /// <summary>
    /// <c>dlopen</c>s exactly the file behind <paramref name="handle"/>, through <c>/proc/self/fd/N</c>. glibc looks up
    /// already-loaded objects by name before it opens anything, and a descriptor number is reused once closed, so the
    /// name is made unique per load: <c>./</c> and <c>.//</c> segments (a no-op to the kernel) spell a sequence
    /// number in binary. The same file loaded twice is still one library (glibc also matches by device and inode).
    /// The descriptor may be closed once this returns.
    /// </summary>
    public static nint Load(SafeFileHandle handle)
    {
        var name = new System.Text.StringBuilder("/proc/self/fd/");
        for (long id = Interlocked.Increment(ref s_loads); id > 0; id >>= 1)
        {
            name.Append((id & 1) == 1 ? "./" : ".//");
        }

        name.Append(handle.DangerousGetHandle());
        return NativeLibrary.Load(name.ToString());
    }

    private static void Check(string path, in Stat stat, uint type, string what)
    {
        uint actual = stat.Mode & SIfmt;
        if (actual == SIflnk)
        {
            throw new ArtifactTrustException(path, $"a symbolic link where {what} should be");
        }

        if (actual != type)
        {
            throw new ArtifactTrustException(path, $"not {what}");
        }

        uint me = geteuid();
        if (stat.Uid != me)
        {
            throw new ArtifactTrustException(path, $"owned by uid {stat.Uid}, not by this process's user (uid {me})");
        }

        if ((stat.Mode & GroupOrOtherWrite) != 0)
        {
            throw new ArtifactTrustException(path,
                $"writable by group or others (mode {Convert.ToString(stat.Mode & 0xFFF, 8)}); chmod go-w it, or use a private cache");
        }
    }

    /// <summary>x86-64 <c>struct stat</c> (144 bytes); only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    private struct Stat
    {
        [FieldOffset(24)]
        public uint Mode;

        [FieldOffset(28)]
        public uint Uid;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, Stat* buffer);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lstat(string path, Stat* buffer);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
