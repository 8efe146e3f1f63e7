namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>Writes the WebAssembly binary encoding into a growable buffer.</summary>
internal sealed class WasmWriter
{
    private byte[] _buffer = new byte[256];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    public WasmWriter Byte(byte value)
    {
        Ensure(1);
        _buffer[Length++] = value;
        return this;
    }

    public WasmWriter Bytes(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(Length));
        Length += bytes.Length;
        return this;
    }

    public WasmWriter U32(uint value) => U64(value);

    public WasmWriter U64(ulong value)
    {
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            Byte(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);

        return this;
    }

    public WasmWriter S64(long value)
    {
        while (true)
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            bool done = (value == 0 && (b & 0x40) == 0) || (value == -1 && (b & 0x40) != 0);
            Byte(done ? b : (byte)(b | 0x80));
            if (done)
            {
                return this;
            }
        }
    }

    public WasmWriter Name(string name)
    {
        byte[] utf8 = System.Text.Encoding.UTF8.GetBytes(name);
        return U32((uint)utf8.Length).Bytes(utf8);
    }

    /// <summary>Appends <paramref name="body"/> prefixed with its length (a section's or a function's framing).</summary>
    public WasmWriter Sized(WasmWriter body) => U32((uint)body.Length).Bytes(body.Written);

    // Instructions the rewriter emits.
    public WasmWriter I32Const(int value) => Byte(0x41).S64(value);

    public WasmWriter I64Const(long value) => Byte(0x42).S64(value);

    public WasmWriter LocalGet(uint index) => Byte(0x20).U32(index);

    public WasmWriter LocalSet(uint index) => Byte(0x21).U32(index);

    public WasmWriter LocalTee(uint index) => Byte(0x22).U32(index);

    public WasmWriter Call(uint function) => Byte(0x10).U32(function);

    /// <summary>An instruction with a memarg naming <paramref name="memory"/> (multi-memory encoding when it is not 0).</summary>
    public WasmWriter MemoryOp(byte opcode, uint alignLog2, uint memory, ulong offset)
    {
        Byte(opcode);
        if (memory == 0)
        {
            U32(alignLog2);
        }
        else
        {
            U32(alignLog2 | 0x40).U32(memory);
        }

        return U64(offset);
    }

    private void Ensure(int more)
    {
        if (Length + more > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + more));
        }
    }
}
