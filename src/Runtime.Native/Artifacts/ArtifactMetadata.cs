using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The metadata block every artifact carries as the exported constant <c>cw_metadata</c> (<see cref="ArtifactAbi.Metadata"/>) (its length in
/// <c>cw_metadata_size</c>). It lives in the shared object's read-only data, so once <c>dlopen</c> has mapped the
/// library, opening it is bounds checks over fixed-size records: no wasm parse, no variable-length decoding.
/// Little-endian, every offset from the start of the block:
/// <code>
///   0  8  magic "CWMETA\r\n"            44  8  global count, offset           (records of 4 bytes)
///   8  4  format version (1)            52 12  memory count, table count, limits offset (24 bytes each)
///  12  4  runtime ABI version           64  8  value-kind pool offset, length (1 byte per kind)
///  16  4  block length                  72  8  string table offset, length (UTF-8)
///  20  8  type count, offset   (16 B)   80 32  module hash (SHA-256 of the wasm)
///  28  8  import count, offset (24 B)  112 32  block hash: SHA-256 of the block with this field zeroed
///  36  8  export count, offset (24 B)  144     records, kind pool, strings
/// </code>
/// The first 16 bytes keep their meaning in every format version, so a reader can always say which version or
/// ABI it was given. Records: type = (params offset, params count, results offset, results count) into the kind
/// pool; import = (module name offset, length, field name offset, length, kind, type index or ~0); export =
/// (name offset, length, kind, index, type index or ~0); global = (value kind, mutable); limits = (min u64,
/// max u64, has-max u32).
/// </summary>
internal static class ArtifactMetadata
{
    /// <summary>
    /// The block layout's version. Changing the layout means bumping this and <see cref="GlueGenerator.Version"/>
    /// (the cache key), so no cached artifact with the old layout is found; one opened by path is refused by version.
    /// </summary>
    public const uint FormatVersion = 1;
    public const int HeaderSize = 144;
    public const int AbiOffset = 12;
    public const int ModuleHashOffset = 80;
    public const int BlockHashOffset = 112;
    private const int TypeRecord = 16;
    private const int ImportRecord = 24;
    private const int ExportRecord = 24;
    private const int GlobalRecord = 4;
    private const int LimitsRecord = 24;
    private const uint NoType = uint.MaxValue;

    /// <summary>Blocks claiming more are rejected before anything is read (Trealla's is about 6 KB).</summary>
    public const long MaxBlockBytes = 16 << 20;

    public static ReadOnlySpan<byte> Magic => "CWMETA\r\n"u8;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Lays out <paramref name="info"/> as a block for runtime ABI <paramref name="abiVersion"/>.</summary>
    public static byte[] Encode(WasmModuleInfo info, int abiVersion)
    {
        ArgumentNullException.ThrowIfNull(info);
        byte[] moduleHash = info.ModuleHash.Length == 64
            ? Convert.FromHexString(info.ModuleHash)
            : throw new ArgumentException("The module hash must be a SHA-256 in hex.", nameof(info));

        var typeIndex = new Dictionary<WasmFunctionType, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < info.Types.Count; i++)
        {
            typeIndex.TryAdd(info.Types[i], i);
        }

        var kinds = new List<byte>();
        var strings = new List<byte>();
        var typeRecords = new List<uint>();
        foreach (WasmFunctionType type in info.Types)
        {
            typeRecords.Add((uint)kinds.Count);
            typeRecords.Add((uint)type.Parameters.Count);
            kinds.AddRange(type.Parameters.Select(k => (byte)k));
            typeRecords.Add((uint)kinds.Count);
            typeRecords.Add((uint)type.Results.Count);
            kinds.AddRange(type.Results.Select(k => (byte)k));
        }

        (uint Offset, uint Length) AddString(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            uint offset = (uint)strings.Count;
            strings.AddRange(bytes);
            return (offset, (uint)bytes.Length);
        }

        uint IndexOf(WasmFunctionType? type) => type switch
        {
            null => NoType,
            _ when typeIndex.TryGetValue(type, out int i) => (uint)i,
            _ => throw new ArgumentException($"Signature {type} is not in the module's type list.", nameof(info)),
        };

        int typesAt = HeaderSize;
        int importsAt = typesAt + (info.Types.Count * TypeRecord);
        int exportsAt = importsAt + (info.Imports.Count * ImportRecord);
        int globalsAt = exportsAt + (info.Exports.Count * ExportRecord);
        int limitsAt = globalsAt + (info.Globals.Count * GlobalRecord);
        int kindsAt = limitsAt + ((info.Memories.Count + info.Tables.Count) * LimitsRecord);
        var importRecords = info.Imports.Select(i => (Module: AddString(i.Module), Name: AddString(i.Name), i.Kind, Type: IndexOf(i.FunctionType))).ToList();
        var exportRecords = info.Exports.Select(e => (Name: AddString(e.Name), e.Kind, e.Index, Type: IndexOf(e.FunctionType))).ToList();
        int stringsAt = kindsAt + kinds.Count;
        int length = stringsAt + strings.Count;

        var block = new byte[length];
        Span<byte> b = block;
        Magic.CopyTo(b);
        void U32(int at, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(at), value);
        U32(8, FormatVersion);
        U32(AbiOffset, (uint)abiVersion);
        U32(16, (uint)length);
        U32(20, (uint)info.Types.Count);
        U32(24, (uint)typesAt);
        U32(28, (uint)info.Imports.Count);
        U32(32, (uint)importsAt);
        U32(36, (uint)info.Exports.Count);
        U32(40, (uint)exportsAt);
        U32(44, (uint)info.Globals.Count);
        U32(48, (uint)globalsAt);
        U32(52, (uint)info.Memories.Count);
        U32(56, (uint)info.Tables.Count);
        U32(60, (uint)limitsAt);
        U32(64, (uint)kindsAt);
        U32(68, (uint)kinds.Count);
        U32(72, (uint)stringsAt);
        U32(76, (uint)strings.Count);
        moduleHash.CopyTo(b[ModuleHashOffset..]);

        for (int i = 0; i < typeRecords.Count; i++)
        {
            U32(typesAt + (i * 4), typeRecords[i]);
        }

        for (int i = 0; i < importRecords.Count; i++)
        {
            int at = importsAt + (i * ImportRecord);
            var r = importRecords[i];
            U32(at, r.Module.Offset);
            U32(at + 4, r.Module.Length);
            U32(at + 8, r.Name.Offset);
            U32(at + 12, r.Name.Length);
            b[at + 16] = (byte)r.Kind;
            U32(at + 20, r.Type);
        }

        for (int i = 0; i < exportRecords.Count; i++)
        {
            int at = exportsAt + (i * ExportRecord);
            var r = exportRecords[i];
            U32(at, r.Name.Offset);
            U32(at + 4, r.Name.Length);
            b[at + 8] = (byte)r.Kind;
            U32(at + 12, r.Index);
            U32(at + 16, r.Type);
        }

        for (int i = 0; i < info.Globals.Count; i++)
        {
            b[globalsAt + (i * GlobalRecord)] = (byte)info.Globals[i].Type;
            b[globalsAt + (i * GlobalRecord) + 1] = info.Globals[i].Mutable ? (byte)1 : (byte)0;
        }

        int limit = limitsAt;
        foreach (WasmLimits l in info.Memories.Concat(info.Tables))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b[limit..], l.Minimum);
            BinaryPrimitives.WriteUInt64LittleEndian(b[(limit + 8)..], l.Maximum ?? 0);
            U32(limit + 16, l.Maximum.HasValue ? 1u : 0u);
            limit += LimitsRecord;
        }

        kinds.ToArray().CopyTo(b[kindsAt..]);
        strings.ToArray().CopyTo(b[stringsAt..]);
        BlockHash(b, b.Slice(BlockHashOffset, 32));
        return block;
    }

    /// <summary>
    /// Checks <paramref name="block"/> (the whole extent the artifact exports) and returns what it declares. Checks,
    /// in order: magic, format version, ABI version, header length, claimed length, block hash, then the bounds of
    /// every table, string and type index. Strings and records are read in place.
    /// </summary>
    /// <exception cref="ArtifactFormatException">Any check failed; the message says which.</exception>
    public static WasmModuleInfo Decode(ReadOnlySpan<byte> block, string path, int abiVersion)
    {
        var r = new Reader(block, path);
        if (block.Length < 16 || !block[..8].SequenceEqual(Magic))
        {
            throw r.Error("no CowWasm metadata block (bad magic): not an artifact, or a damaged one");
        }

        if (r.U32(8) != FormatVersion)
        {
            throw r.Error($"metadata format version {r.U32(8)}; this runtime reads version {FormatVersion}. Rebuild the artifact");
        }

        if (r.U32(AbiOffset) != abiVersion)
        {
            throw r.Error($"built for runtime ABI {r.U32(AbiOffset)}; this runtime speaks ABI {abiVersion}. " +
                          "Rebuild it with this CowWasm (delete its cache entry to rebuild)");
        }

        if (block.Length < HeaderSize)
        {
            throw r.Error($"metadata block of {block.Length} bytes is shorter than its {HeaderSize}-byte header");
        }

        if (r.U32(16) != block.Length)
        {
            throw r.Error($"metadata block claims {r.U32(16)} bytes but the artifact exports {block.Length}");
        }

        Span<byte> hash = stackalloc byte[32];
        BlockHash(block, hash);
        if (!hash.SequenceEqual(block.Slice(BlockHashOffset, 32)))
        {
            throw r.Error("metadata block hash mismatch: the block is corrupt");
        }

        ReadOnlySpan<byte> kinds = r.Bytes(64, 68, "value-kind pool");
        ReadOnlySpan<byte> strings = r.Bytes(72, 76, "string table");
        ReadOnlySpan<byte> typeTable = r.Table(20, 24, TypeRecord, "type");
        ReadOnlySpan<byte> importTable = r.Table(28, 32, ImportRecord, "import");
        ReadOnlySpan<byte> exportTable = r.Table(36, 40, ExportRecord, "export");
        ReadOnlySpan<byte> globalTable = r.Table(44, 48, GlobalRecord, "global");
        uint memoryCount = r.U32(52);
        ReadOnlySpan<byte> limitTable = r.Region(60, (ulong)memoryCount + r.U32(56), LimitsRecord, "limits");

        var types = new WasmFunctionType[typeTable.Length / TypeRecord];
        for (int i = 0; i < types.Length; i++)
        {
            ReadOnlySpan<byte> t = typeTable.Slice(i * TypeRecord, TypeRecord);
            types[i] = new WasmFunctionType(Kinds(r, kinds, t, 0, new Item("type", i, "parameters")), Kinds(r, kinds, t, 8, new Item("type", i, "results")));
        }

        var imports = new WasmImport[importTable.Length / ImportRecord];
        for (int i = 0; i < imports.Length; i++)
        {
            ReadOnlySpan<byte> rec = importTable.Slice(i * ImportRecord, ImportRecord);
            string module = Text(r, strings, rec, 0, new Item("import", i, "module name"));
            string name = Text(r, strings, rec, 8, new Item("import", i, "name"));
            var item = new Item("import", i, "", name);
            WasmExternKind kind = ExternKind(r, rec[16], item);
            imports[i] = new WasmImport(module, name, kind, Signature(r, types, kind, Le(rec, 20), item));
        }

        var exports = new WasmExport[exportTable.Length / ExportRecord];
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < exports.Length; i++)
        {
            ReadOnlySpan<byte> rec = exportTable.Slice(i * ExportRecord, ExportRecord);
            string name = Text(r, strings, rec, 0, new Item("export", i, "name"));
            var item = new Item("export", i, "", name);
            if (!names.Add(name))
            {
                throw r.Error($"{item} appears twice");
            }

            WasmExternKind kind = ExternKind(r, rec[8], item);
            exports[i] = new WasmExport(name, kind, Le(rec, 12), Signature(r, types, kind, Le(rec, 16), item));
        }

        var globals = new WasmGlobal[globalTable.Length / GlobalRecord];
        for (int i = 0; i < globals.Length; i++)
        {
            ReadOnlySpan<byte> rec = globalTable.Slice(i * GlobalRecord, GlobalRecord);
            bool mutable = rec[1] switch
            {
                0 => false,
                1 => true,
                var m => throw r.Error($"global {i} has mutability {m} (0 or 1 expected)"),
            };
            globals[i] = new WasmGlobal(ValueKind(r, rec[0], new Item("global", i, "")), mutable);
        }

        var limits = new WasmLimits[limitTable.Length / LimitsRecord];
        for (int i = 0; i < limits.Length; i++)
        {
            ReadOnlySpan<byte> rec = limitTable.Slice(i * LimitsRecord, LimitsRecord);
            ulong min = BinaryPrimitives.ReadUInt64LittleEndian(rec);
            ulong max = BinaryPrimitives.ReadUInt64LittleEndian(rec[8..]);
            limits[i] = Le(rec, 16) switch
            {
                0 => new WasmLimits(min, null),
                1 when max >= min => new WasmLimits(min, max),
                1 => throw r.Error($"limits {i} have maximum {max} below minimum {min}"),
                var flag => throw r.Error($"limits {i} have has-maximum flag {flag} (0 or 1 expected)"),
            };
        }

        return new WasmModuleInfo(types, imports, exports, globals, limits[..(int)memoryCount], limits[(int)memoryCount..])
        {
            ModuleHash = Convert.ToHexString(block.Slice(ModuleHashOffset, 32)),
        };
    }

    /// <summary>SHA-256 of <paramref name="block"/> with the hash field read as zeros (one-shot over a pooled copy:
    /// IncrementalHash's per-call setup cost more than hashing a small block).</summary>
    private static void BlockHash(ReadOnlySpan<byte> block, Span<byte> destination)
    {
        byte[] copy = ArrayPool<byte>.Shared.Rent(block.Length);
        try
        {
            Span<byte> view = copy.AsSpan(0, block.Length);
            block.CopyTo(view);
            view.Slice(BlockHashOffset, 32).Clear();
            SHA256.HashData(view, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private static uint Le(ReadOnlySpan<byte> record, int at) => BinaryPrimitives.ReadUInt32LittleEndian(record[at..]);

    private static WasmValueKind[] Kinds(Reader r, ReadOnlySpan<byte> pool, ReadOnlySpan<byte> record, int at, Item what)
    {
        ReadOnlySpan<byte> slice = r.Slice(pool, Le(record, at), Le(record, at + 4), what);
        var result = new WasmValueKind[slice.Length];
        for (int i = 0; i < slice.Length; i++)
        {
            result[i] = ValueKind(r, slice[i], what);
        }

        return result;
    }

    private static WasmValueKind ValueKind(Reader r, byte value, Item what) =>
        value is 0x7F or 0x7E or 0x7D or 0x7C or 0x7B or 0x70 or 0x6F // the WasmValueKind values
            ? (WasmValueKind)value
            : throw r.Error($"{what} has unknown value type 0x{value:X2}");

    private static WasmExternKind ExternKind(Reader r, byte value, Item what) =>
        value <= (byte)WasmExternKind.Global ? (WasmExternKind)value : throw r.Error($"{what} has unknown kind {value}");

    private static WasmFunctionType? Signature(Reader r, WasmFunctionType[] types, WasmExternKind kind, uint index, Item what) =>
        kind == WasmExternKind.Function
            ? index < types.Length ? types[index] : throw r.Error($"{what} names type {index} of {types.Length}")
            : index == NoType ? null : throw r.Error($"{what} is not a function but names type {index}");

    private static string Text(Reader r, ReadOnlySpan<byte> strings, ReadOnlySpan<byte> record, int at, Item what)
    {
        ReadOnlySpan<byte> bytes = r.Slice(strings, Le(record, at), Le(record, at + 4), what);
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw r.Error($"{what} is not valid UTF-8");
        }
    }

    /// <summary>Names a record in error messages; formatted only when there is an error (decoding stays allocation-light).</summary>
    private readonly record struct Item(string Table, int Index, string Part, string? Name = null)
    {
        public override string ToString() =>
            $"{Table} {Index}{(Name is null ? "" : $" \"{Name}\"")}{(Part.Length == 0 ? "" : " " + Part)}";
    }

    private readonly ref struct Reader(ReadOnlySpan<byte> block, string path)
    {
        private readonly ReadOnlySpan<byte> _block = block;

        public uint U32(int at) => BinaryPrimitives.ReadUInt32LittleEndian(_block[at..]);

        public ArtifactFormatException Error(string problem) => new(path, problem);

        /// <summary>A table whose count and offset are header fields.</summary>
        public ReadOnlySpan<byte> Table(int countAt, int offsetAt, int recordBytes, string what) =>
            Region(offsetAt, U32(countAt), recordBytes, what + " table");

        /// <summary><paramref name="count"/> records of <paramref name="recordBytes"/> at the offset in header field <paramref name="offsetAt"/>.</summary>
        public ReadOnlySpan<byte> Region(int offsetAt, ulong count, int recordBytes, string what)
        {
            ulong offset = U32(offsetAt);
            ulong bytes = count * (ulong)recordBytes; // count < 2^33 and recordBytes ≤ 24: no overflow
            if (offset < HeaderSize || offset > (ulong)_block.Length || bytes > (ulong)_block.Length - offset)
            {
                throw Error($"{what} ({count} × {recordBytes} bytes at {offset}) lies outside the {_block.Length}-byte block");
            }

            return _block.Slice((int)offset, (int)bytes);
        }

        /// <summary>A byte pool whose offset and length are header fields.</summary>
        public ReadOnlySpan<byte> Bytes(int offsetAt, int lengthAt, string what) => Region(offsetAt, U32(lengthAt), 1, what);

        public ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> within, uint offset, uint length, Item what) =>
            (ulong)offset + length <= (ulong)within.Length
                ? within.Slice((int)offset, (int)length)
                : throw Error($"{what} ({length} bytes at {offset}) lies outside its {within.Length}-byte pool");
    }
}
