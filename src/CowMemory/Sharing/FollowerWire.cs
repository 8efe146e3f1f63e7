using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace CowWasm.Memory.Sharing;

/// <summary>
/// The follower protocol's frames (little-endian): <c>u32 length</c> of what follows, <c>u8 type</c>, then the body.
/// The handshake begins with <see cref="Magic"/> sent with the base's descriptor attached (<c>SCM_RIGHTS</c>), then a
/// <see cref="FrameType.Hello"/> frame. Bodies:
/// <list type="bullet">
/// <item><c>Hello</c>: u32 version, u64 sequence, u64 committed pages, u32 + identity bytes, u32 + state bytes.</item>
/// <item><c>Prepare</c>: u64 sequence, u64 committed pages, u32 run count, runs as (u64 start, u64 count).</item>
/// <item><c>Pinned</c> (follower → hub): u64 sequence.</item>
/// <item><c>Commit</c>: u64 sequence, u64 committed pages, u32 + state bytes.</item>
/// <item><c>Dropped</c>: UTF-8 reason.</item>
/// </list>
/// </summary>
internal static class FollowerWire
{
    public static ReadOnlySpan<byte> Magic => "CWFOLLOW"u8;

    public const int Version = 1;

    /// <summary>The largest frame either side accepts (a prepare of 1M runs, or state of 16 MiB).</summary>
    public const int MaxFrameBytes = 1 << 24;

    public enum FrameType : byte
    {
        Hello = 1,
        Prepare = 2,
        Pinned = 3,
        Commit = 4,
        Dropped = 5,
    }

    public static byte[] Hello(long sequence, long committedPages, ReadOnlySpan<byte> identity, ReadOnlySpan<byte> state)
    {
        var w = new Writer(FrameType.Hello, 4 + 8 + 8 + 4 + identity.Length + 4 + state.Length);
        w.U32(Version);
        w.U64(sequence);
        w.U64(committedPages);
        w.Bytes(identity);
        w.Bytes(state);
        return w.Done();
    }

    public static byte[] Prepare(long sequence, long committedPages, IReadOnlyList<PageRun> runs)
    {
        var w = new Writer(FrameType.Prepare, 8 + 8 + 4 + 16 * runs.Count);
        w.U64(sequence);
        w.U64(committedPages);
        w.U32(runs.Count);
        foreach (PageRun run in runs)
        {
            w.U64(run.StartPage);
            w.U64(run.PageCount);
        }

        return w.Done();
    }

    public static byte[] Pinned(long sequence)
    {
        var w = new Writer(FrameType.Pinned, 8);
        w.U64(sequence);
        return w.Done();
    }

    public static byte[] Commit(long sequence, long committedPages, ReadOnlySpan<byte> state)
    {
        var w = new Writer(FrameType.Commit, 8 + 8 + 4 + state.Length);
        w.U64(sequence);
        w.U64(committedPages);
        w.Bytes(state);
        return w.Done();
    }

    public static byte[] Dropped(string reason)
    {
        byte[] text = Encoding.UTF8.GetBytes(reason);
        var w = new Writer(FrameType.Dropped, text.Length);
        w.Raw(text);
        return w.Done();
    }

    /// <summary>Takes one whole frame off <paramref name="buffer"/>, if it holds one.</summary>
    /// <exception cref="InvalidDataException">A frame length out of range.</exception>
    public static bool TryTake(ref ReadOnlySequence<byte> buffer, out FrameType type, out byte[] body)
    {
        type = default;
        body = [];
        if (buffer.Length < 5)
        {
            return false;
        }

        Span<byte> head = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(head);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(head);
        if (length < 1 || length > MaxFrameBytes)
        {
            throw new InvalidDataException($"A follower-protocol frame of {length} bytes (the limit is {MaxFrameBytes}).");
        }

        if (buffer.Length < 4 + length)
        {
            return false;
        }

        type = (FrameType)head[4];
        body = buffer.Slice(5, length - 1).ToArray();
        buffer = buffer.Slice(4 + length);
        return true;
    }

    /// <summary>Reads a body field by field; any read past the end is an <see cref="InvalidDataException"/>.</summary>
    public ref struct Reader(ReadOnlySpan<byte> body)
    {
        private ReadOnlySpan<byte> _rest = body;

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        public long U64()
        {
            ulong value = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
            return value <= long.MaxValue ? (long)value : throw new InvalidDataException("A follower-protocol number out of range.");
        }

        public byte[] Bytes()
        {
            uint length = U32();
            return length <= (uint)_rest.Length ? Take((int)length).ToArray() : throw new InvalidDataException("A follower-protocol field runs past its frame.");
        }

        public PageRun[] Runs()
        {
            uint count = U32();
            if (count > (uint)_rest.Length / 16)
            {
                throw new InvalidDataException("A follower-protocol run list runs past its frame.");
            }

            var runs = new PageRun[count];
            for (int i = 0; i < runs.Length; i++)
            {
                long start = U64(), pages = U64();
                runs[i] = new PageRun(start, pages);
            }

            return runs;
        }

        public readonly string Text() => Encoding.UTF8.GetString(_rest);

        public readonly void End()
        {
            if (!_rest.IsEmpty)
            {
                throw new InvalidDataException($"A follower-protocol frame has {_rest.Length} bytes past its fields.");
            }
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (_rest.Length < count)
            {
                throw new InvalidDataException("A follower-protocol frame ends inside a field.");
            }

            ReadOnlySpan<byte> taken = _rest[..count];
            _rest = _rest[count..];
            return taken;
        }
    }

    private struct Writer
    {
        private readonly byte[] _frame;
        private int _at;

        public Writer(FrameType type, int bodyLength)
        {
            _frame = new byte[5 + bodyLength];
            BinaryPrimitives.WriteUInt32LittleEndian(_frame, (uint)(1 + bodyLength));
            _frame[4] = (byte)type;
            _at = 5;
        }

        public void U32(int value)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_frame.AsSpan(_at), (uint)value);
            _at += 4;
        }

        public void U64(long value)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(_frame.AsSpan(_at), (ulong)value);
            _at += 8;
        }

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            U32(bytes.Length);
            Raw(bytes);
        }

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_frame.AsSpan(_at));
            _at += bytes.Length;
        }

        public readonly byte[] Done() => _at == _frame.Length ? _frame : throw new InvalidOperationException("Frame length mismatch.");
    }
}
