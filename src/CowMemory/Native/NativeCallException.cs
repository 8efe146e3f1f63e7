using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>
/// A Linux system call failed. The message names the operation, the arguments that matter and the errno,
/// e.g. <c>mmap(len=268435456, MAP_PRIVATE|MAP_FIXED) failed: ENOMEM (Cannot allocate memory)</c>.
/// </summary>
public class NativeCallException : IOException
{
    /// <summary>Creates the exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public NativeCallException(string operation, int errno)
        : base($"{operation} failed: {Native.Errno.Name(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})")
    {
        Operation = operation;
        Errno = errno;
        HResult = errno;
    }

    /// <summary>The call and its salient arguments, as written in the message.</summary>
    public string Operation { get; }

    /// <summary>The raw errno value.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. <c>ENOMEM</c>.</summary>
    public string ErrnoName => Native.Errno.Name(Errno);
}

/// <summary>errno values used by this library and their symbolic names (x86-64 Linux numbering).</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENFILE = 23, EMFILE = 24,
        ENOTTY = 25, EFBIG = 27, ENOSPC = 28, ESPIPE = 29, ENOSYS = 38, EOPNOTSUPP = 95;

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", EBADF => "EBADF",
        EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EACCES => "EACCES", EFAULT => "EFAULT", EBUSY => "EBUSY",
        EEXIST => "EEXIST", EINVAL => "EINVAL", ENFILE => "ENFILE", EMFILE => "EMFILE", ENOTTY => "ENOTTY",
        EFBIG => "EFBIG", ENOSPC => "ENOSPC", ESPIPE => "ESPIPE", ENOSYS => "ENOSYS", EOPNOTSUPP => "EOPNOTSUPP",
        _ => $"errno {errno}",
    };

    /// <summary>The one checker every syscall result goes through.</summary>
    public static long Check(long result, string operation)
    {
        if (result < 0)
        {
            throw new NativeCallException(operation, Marshal.GetLastPInvokeError());
        }

        return result;
    }

    /// <summary>Like <see cref="Check(long, string)"/> but builds the operation text only on failure.</summary>
    public static long Check<TState>(long result, TState state, Func<TState, string> describe)
    {
        if (result < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new NativeCallException(describe(state), errno);
        }

        return result;
    }
}
