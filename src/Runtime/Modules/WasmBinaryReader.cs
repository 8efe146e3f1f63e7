using System.Text;

namespace CowWasm.Runtime;

/// <summary>
/// Reads the declarations of a WebAssembly binary (types, imports, functions, tables, memories, globals,
/// exports) and checks its framing. Function bodies are not validated here — wasm2c does that when the
/// artifact is compiled — but every section is bounds-checked, so malformed input fails fast with the offset.
/// </summary>
public static class WasmBinaryReader
{
    /// <summary>Reads <paramref name="wasm"/>.</summary>
    /// <exception cref="WasmFormatException">The bytes are not a well-formed module.</exception>
    public static WasmModuleInfo Read(ReadOnlySpan<byte> wasm)
    {
        var r = new Cursor(wasm);
        if (wasm.Length < 8 || !wasm[..4].SequenceEqual("\0asm"u8))
        {
            throw new WasmFormatException("Not a WebAssembly module: the magic number \\0asm is missing.");
        }

        r.Position = 4;
        uint version = r.U32Fixed();
        if (version != 1)
        {
            throw new WasmFormatException($"Unsupported WebAssembly binary version {version} (expected 1).");
        }

        var types = new List<WasmFunctionType>();
        var imports = new List<WasmImport>();
        var functionTypes = new List<uint>();
        var tables = new List<WasmLimits>();
        var memories = new List<WasmLimits>();
        var globals = new List<WasmGlobal>();
        var exports = new List<(string Name, WasmExternKind Kind, uint Index)>();
        int lastId = 0;
        while (!r.AtEnd)
        {
            int sectionStart = r.Position;
            byte id = r.Byte();
            uint size = r.U32();
            if (size > r.Remaining)
            {
                throw r.Error($"section {id} claims {size} bytes but only {r.Remaining} remain", sectionStart);
            }

            int end = r.Position + (int)size;
            if (id != 0)
            {
                if (id > 12)
                {
                    throw r.Error($"unknown section id {id}", sectionStart);
                }

                // Sections appear at most once, in order (DataCount, 12, sits between Import-ish ids; allow it).
                if (id != 12 && id <= lastId && lastId != 12)
                {
                    throw r.Error($"section {id} out of order or repeated", sectionStart);
                }

                lastId = id;
            }

            var s = r.Slice(end);
            switch (id)
            {
                case 1:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        if (s.Byte() != 0x60)
                        {
                            throw s.Error("function type must start with 0x60");
                        }

                        types.Add(new WasmFunctionType(s.ValTypes(), s.ValTypes()));
                    }

                    break;
                case 2:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        string module = s.Name();
                        string name = s.Name();
                        var kind = (WasmExternKind)s.Byte();
                        WasmFunctionType? type = null;
                        switch (kind)
                        {
                            case WasmExternKind.Function:
                                type = TypeAt(types, s.U32(), s);
                                break;
                            case WasmExternKind.Table:
                                s.ValType();
                                s.Limits();
                                break;
                            case WasmExternKind.Memory:
                                s.Limits();
                                break;
                            case WasmExternKind.Global:
                                s.ValType();
                                s.Byte();
                                break;
                            default:
                                throw s.Error($"import {module}.{name} has unknown kind {(byte)kind}");
                        }

                        imports.Add(new WasmImport(module, name, kind, type));
                    }

                    break;
                case 3:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        functionTypes.Add(s.U32());
                    }

                    break;
                case 4:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        s.ValType();
                        tables.Add(s.Limits());
                    }

                    break;
                case 5:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        memories.Add(s.Limits());
                    }

                    break;
                case 6:
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        WasmValueKind type = s.ValType();
                        bool mutable = s.Byte() switch
                        {
                            0 => false,
                            1 => true,
                            var m => throw s.Error($"global mutability must be 0 or 1, not {m}"),
                        };
                        s.SkipConstExpr();
                        globals.Add(new WasmGlobal(type, mutable));
                    }

                    break;
                case 7:
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    for (uint n = s.U32(), i = 0; i < n; i++)
                    {
                        string name = s.Name();
                        if (!seen.Add(name))
                        {
                            throw s.Error($"duplicate export name \"{name}\"");
                        }

                        var kind = (WasmExternKind)s.Byte();
                        if (kind > WasmExternKind.Global)
                        {
                            throw s.Error($"export \"{name}\" has unknown kind {(byte)kind}");
                        }

                        exports.Add((name, kind, s.U32()));
                    }

                    break;
            }

            if (id is >= 1 and <= 7 && !s.AtEnd)
            {
                throw s.Error($"section {id} has {s.Remaining} unread bytes");
            }

            r.Position = end;
        }

        var importedFunctions = imports.Where(i => i.Kind == WasmExternKind.Function).ToList();
        int functionCount = importedFunctions.Count + functionTypes.Count;
        var exportList = new List<WasmExport>();
        foreach ((string name, WasmExternKind kind, uint index) in exports)
        {
            WasmFunctionType? type = null;
            if (kind == WasmExternKind.Function)
            {
                if (index >= functionCount)
                {
                    throw new WasmFormatException($"export \"{name}\" names function {index} of {functionCount}");
                }

                type = index < importedFunctions.Count
                    ? importedFunctions[(int)index].FunctionType
                    : TypeAt(types, functionTypes[(int)index - importedFunctions.Count], r);
            }

            exportList.Add(new WasmExport(name, kind, index, type));
        }

        return new WasmModuleInfo(types, imports, exportList, globals, memories, tables)
        {
            ModuleHash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(wasm)),
        };
    }

    private static WasmFunctionType TypeAt(List<WasmFunctionType> types, uint index, Cursor at) =>
        index < types.Count ? types[(int)index] : throw at.Error($"type index {index} out of range ({types.Count} types)");

    private ref struct Cursor(ReadOnlySpan<byte> bytes, int origin = 0)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;

        public int Position;

        public readonly bool AtEnd => Position >= _bytes.Length;

        public readonly int Remaining => _bytes.Length - Position;

        public readonly Cursor Slice(int end) => new(_bytes[..end], origin) { Position = Position };

        public readonly WasmFormatException Error(string what, int? at = null) =>
            new($"Malformed WebAssembly at byte {origin + (at ?? Position)}: {what}.");

        public byte Byte() => AtEnd ? throw Error("unexpected end of data") : _bytes[Position++];

        public uint U32Fixed()
        {
            if (Remaining < 4)
            {
                throw Error("unexpected end of data");
            }

            uint v = BitConverter.ToUInt32(_bytes.Slice(Position, 4));
            Position += 4;
            return v;
        }

        public uint U32() => (uint)Unsigned(32);

        public ulong U64() => Unsigned(64);

        private ulong Unsigned(int bits)
        {
            ulong result = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > ((bits + 6) / 7 * 7) - 7) // at most ceil(bits / 7) bytes
                {
                    throw Error($"LEB128 integer too long for {bits} bits");
                }

                byte b = Byte();
                ulong chunk = (ulong)(b & 0x7F);
                if (shift > 0 && (shift >= 64 || (chunk << shift >> shift) != chunk || (bits < 64 && (chunk << shift) >> bits != 0)))
                {
                    throw Error($"LEB128 integer exceeds {bits} bits");
                }

                result |= chunk << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }
        }

        public void SkipSigned(int maxBytes)
        {
            for (int i = 0; ; i++)
            {
                if (i >= maxBytes)
                {
                    throw Error("signed LEB128 integer too long");
                }

                if ((Byte() & 0x80) == 0)
                {
                    return;
                }
            }
        }

        public string Name()
        {
            uint length = U32();
            if (length > Remaining)
            {
                throw Error($"name of {length} bytes runs past the section");
            }

            ReadOnlySpan<byte> raw = _bytes.Slice(Position, (int)length);
            Position += (int)length;
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                throw Error("name is not valid UTF-8");
            }
        }

        public WasmValueKind ValType()
        {
            byte b = Byte();
            return b is 0x7F or 0x7E or 0x7D or 0x7C or 0x7B or 0x70 or 0x6F
                ? (WasmValueKind)b
                : throw Error($"unknown value type 0x{b:x2}");
        }

        public WasmValueKind[] ValTypes()
        {
            uint n = U32();
            if (n > Remaining)
            {
                throw Error($"{n} value types cannot fit in the section");
            }

            var result = new WasmValueKind[n];
            for (int i = 0; i < n; i++)
            {
                result[i] = ValType();
            }

            return result;
        }

        public WasmLimits Limits()
        {
            byte flags = Byte();
            if ((flags & ~0x07) != 0)
            {
                throw Error($"unknown limits flags 0x{flags:x2}");
            }

            bool is64 = (flags & 0x04) != 0;
            ulong min = is64 ? U64() : U32();
            ulong? max = (flags & 0x01) != 0 ? (is64 ? U64() : U32()) : null;
            if (max < min)
            {
                throw Error($"limits maximum {max} is below the minimum {min}");
            }

            return new WasmLimits(min, max);
        }

        public void SkipConstExpr()
        {
            while (true)
            {
                byte op = Byte();
                switch (op)
                {
                    case 0x0B: return; // end
                    case 0x41: SkipSigned(5); break; // i32.const
                    case 0x42: SkipSigned(10); break; // i64.const
                    case 0x43: Skip(4); break; // f32.const
                    case 0x44: Skip(8); break; // f64.const
                    case 0x23: U32(); break; // global.get
                    case 0xD0: Byte(); break; // ref.null
                    case 0xD2: U32(); break; // ref.func
                    case 0x6A or 0x6B or 0x6C or 0x7C or 0x7D or 0x7E: break; // extended-const arithmetic
                    default: throw Error($"unsupported instruction 0x{op:x2} in a constant expression");
                }
            }
        }

        private void Skip(int n)
        {
            if (n > Remaining)
            {
                throw Error("unexpected end of data");
            }

            Position += n;
        }
    }
}
