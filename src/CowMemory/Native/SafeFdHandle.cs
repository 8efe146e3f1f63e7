using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>An owned file descriptor, closed exactly once.</summary>
internal sealed class SafeFdHandle : SafeHandle
{
    public SafeFdHandle(int fd)
        : base(invalidHandleValue: -1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle == -1;

    /// <summary>
    /// Pins the handle for the duration of a native call (so a concurrent Dispose cannot close and recycle
    /// the fd mid-call) and yields the raw value. Throws <see cref="ObjectDisposedException"/> when closed.
    /// </summary>
    public Lease Use(out int fd)
    {
        bool added = false;
        DangerousAddRef(ref added);
        fd = (int)handle;
        return new Lease(this);
    }

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;

    public readonly struct Lease(SafeHandle owner) : IDisposable
    {
        public void Dispose() => owner.DangerousRelease();
    }
}

/// <summary>An owned address range, unmapped exactly once.</summary>
internal sealed class SafeMappingHandle : SafeHandle
{
    public SafeMappingHandle(nint address, long byteLength)
        : base(invalidHandleValue: 0, ownsHandle: true)
    {
        SetHandle(address);
        ByteLength = byteLength;
    }

    public long ByteLength { get; }

    public nint Address => handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => Libc.TryMunmap(handle, ByteLength);
}
