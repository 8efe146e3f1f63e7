using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>
/// Passing a file descriptor over a Unix domain socket (<c>sendmsg</c>/<c>recvmsg</c> with <c>SCM_RIGHTS</c>):
/// .NET's <see cref="Socket"/> has no ancillary-data API, so this is the one hand-rolled piece of the follower
/// handshake. x86-64 layouts: <c>struct msghdr</c> is 56 bytes, <c>struct cmsghdr</c> 16 bytes before its data.
/// </summary>
internal static unsafe partial class Libc
{
    private const int SOL_SOCKET = 1;
    private const int SCM_RIGHTS = 1;
    private const int MSG_CMSG_CLOEXEC = 0x40000000;
    private const int CmsgHeader = 16;  // cmsg_len (size_t), cmsg_level (int), cmsg_type (int)
    private const int MaxFds = 4;
    private const int CmsgSpace = CmsgHeader + MaxFds * sizeof(int); // CMSG_SPACE(4 ints): 32, already 8-aligned

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int socket, MsgHdr* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int socket, int level, int option, void* value, uint* length);

    private const int SO_PEERCRED = 17;

    /// <summary>The user id of the process at the other end of a connected Unix socket (<c>SO_PEERCRED</c>).</summary>
    public static uint PeerUserId(Socket socket)
    {
        int* credentials = stackalloc int[3]; // struct ucred: pid, uid, gid
        uint length = 3 * sizeof(int);
        int result = getsockopt((int)socket.Handle, SOL_SOCKET, SO_PEERCRED, credentials, &length);
        Errno.Check(result, 0, _ => "getsockopt(SO_PEERCRED)");
        return (uint)credentials[1];
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int socket, MsgHdr* message, int flags);

    /// <summary>Sends <paramref name="payload"/> (at least one byte) with <paramref name="fds"/> attached, waiting while the socket is not writable.</summary>
    public static void SendWithFds(Socket socket, ReadOnlySpan<byte> payload, params SafeFdHandle[] fds)
    {
        if (payload.IsEmpty || fds.Length is 0 or > MaxFds)
        {
            throw new ArgumentException($"A message carrying descriptors needs at least one byte and 1..{MaxFds} descriptors.");
        }

        bool[] added = new bool[fds.Length];
        try
        {
            byte* control = stackalloc byte[CmsgSpace];
            new Span<byte>(control, CmsgSpace).Clear();
            *(nuint*)control = (nuint)(CmsgHeader + fds.Length * sizeof(int)); // CMSG_LEN
            *(int*)(control + 8) = SOL_SOCKET;
            *(int*)(control + 12) = SCM_RIGHTS;
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref added[i]); // kept open until sendmsg has duplicated it into the message
                ((int*)(control + CmsgHeader))[i] = (int)fds[i].DangerousGetHandle();
            }

            fixed (byte* data = payload)
            {
                var iov = new IoVec { Base = data, Length = (nuint)payload.Length };
                int controlLength = (CmsgHeader + fds.Length * sizeof(int) + 7) & ~7; // CMSG_SPACE
                var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
                nint sent = Transfer(socket, &message, send: true);

                Errno.Check(sent, payload.Length, n => $"sendmsg({n} bytes, SCM_RIGHTS)");
                if (sent != payload.Length)
                {
                    throw new IOException($"sendmsg sent {sent} of {payload.Length} bytes with the descriptors.");
                }
            }
        }
        finally
        {
            for (int i = 0; i < fds.Length; i++)
            {
                if (added[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/> with the descriptors attached to it (close-on-exec), on a
    /// socket, waiting for it to be readable. Returns the bytes received; <paramref name="fds"/> holds the descriptors (empty when none came).
    /// </summary>
    public static int ReceiveWithFds(Socket socket, Span<byte> buffer, out SafeFdHandle[] fds)
    {
        byte* control = stackalloc byte[CmsgSpace];
        new Span<byte>(control, CmsgSpace).Clear();
        fixed (byte* data = buffer)
        {
            var iov = new IoVec { Base = data, Length = (nuint)buffer.Length };
            var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = CmsgSpace };
            nint received = Transfer(socket, &message, send: false);

            Errno.Check(received, buffer.Length, n => $"recvmsg({n}-byte buffer, SCM_RIGHTS)");
            fds = [];
            if (message.ControlLength >= CmsgHeader && *(int*)(control + 8) == SOL_SOCKET && *(int*)(control + 12) == SCM_RIGHTS)
            {
                int count = (int)((*(nuint*)control - CmsgHeader) / sizeof(int));
                fds = new SafeFdHandle[Math.Clamp(count, 0, MaxFds)];
                for (int i = 0; i < fds.Length; i++)
                {
                    fds[i] = new SafeFdHandle(((int*)(control + CmsgHeader))[i]);
                }
            }

            return (int)received;
        }
    }

    /// <summary>sendmsg or recvmsg, retried on EINTR and, on a socket .NET has made non-blocking, after waiting on EAGAIN.</summary>
    private static nint Transfer(Socket socket, MsgHdr* message, bool send)
    {
        while (true)
        {
            nint n = send ? sendmsg((int)socket.Handle, message, 0) : recvmsg((int)socket.Handle, message, MSG_CMSG_CLOEXEC);
            int error = n < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (error == Errno.EAGAIN)
            {
                socket.Poll(-1, send ? SelectMode.SelectWrite : SelectMode.SelectRead);
            }
            else if (error != Errno.EINTR)
            {
                return n;
            }
        }
    }

    /// <summary>The size of the file behind <paramref name="fd"/> (x86-64 <c>struct stat</c>: st_size at byte 48).</summary>
    public static long FileSize(SafeFdHandle fd)
    {
        using var _ = fd.Use(out int raw);
        byte* stat = stackalloc byte[144];
        Errno.Check(fstat(raw, stat), raw, f => $"fstat(fd={f})");
        return *(long*)(stat + 48);
    }
}
