namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// Reads the WebAssembly binary encoding (LEB128 integers, names, raw runs) with every read bounds-checked: a
/// truncated or overlong encoding is a <see cref="WasmFormatException"/> naming the offset, never an index error.
/// </summary>
internal ref struct WasmCursor(ReadOnlySpan<byte> bytes, int origin = 0)
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;

    /// <summary>The position within the span.</summary>
    public int Position;

    /// <summary>Where the span starts in the module (for messages).</summary>
    public readonly int Origin = origin;

    public readonly bool AtEnd => Position >= _bytes.Length;

    public readonly int Remaining => _bytes.Length - Position;

    public byte Byte() => AtEnd ? throw Error("unexpected end of data") : _bytes[Position++];

    public uint U32() => (uint)Unsigned(32);

    public ulong U64() => Unsigned(64);

    public int S32() => (int)Signed(32);

    public long S64() => Signed(64);

    public ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw Error($"{count} bytes wanted, {Remaining} left");
        }

        ReadOnlySpan<byte> run = _bytes.Slice(Position, count);
        Position += count;
        return run;
    }

    public string Name()
    {
        uint length = U32();
        return System.Text.Encoding.UTF8.GetString(Take(checked((int)Math.Min(length, int.MaxValue))));
    }

    /// <summary>The bytes from <paramref name="start"/> to the current position.</summary>
    public readonly ReadOnlySpan<byte> Since(int start) => _bytes[start..Position];

    public readonly WasmFormatException Error(string what, int? at = null) =>
        new($"Malformed module at byte {Origin + (at ?? Position)}: {what}.");

    private ulong Unsigned(int bits)
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            if (shift >= bits + 7)
            {
                throw Error($"LEB128 integer longer than {bits} bits");
            }

            byte b = Byte();
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }
    }

    private long Signed(int bits)
    {
        long result = 0;
        int shift = 0;
        byte b;
        do
        {
            if (shift >= bits + 7)
            {
                throw Error($"signed LEB128 integer longer than {bits} bits");
            }

            b = Byte();
            result |= (long)(b & 0x7F) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);

        return shift < 64 && (b & 0x40) != 0 ? result | (-1L << shift) : result;
    }
}
