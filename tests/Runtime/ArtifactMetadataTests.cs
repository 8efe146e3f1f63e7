using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Runtime;

/// <summary>The metadata block artifacts carry (<see cref="ArtifactMetadata"/>) and opening artifacts without their wasm.</summary>
public sealed class ArtifactMetadataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-meta-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("basic")]
    [InlineData("kv")]
    [InlineData("wasi")]
    public void OpenByPath_DescribesTheModuleExactlyAsTheWasmDoes(string guest)
    {
        byte[] wasm = TestModules.Wasm(guest);
        Artifact artifact = ArtifactCompiler.Compile(wasm, TestModules.Cache);

        using WasmModule module = WasmModule.Open(artifact.LibraryPath);

        Assert.Equal(Describe(WasmBinaryReader.Read(wasm)), Describe(module.Info));
        Assert.Null(module.Artifact);
        Assert.Equal(artifact.LibraryPath, module.LibraryPath);
    }

    [Fact]
    public void OpenByPath_RunsTheModule_WithNoWasmAtHand()
    {
        Artifact artifact = ArtifactCompiler.Compile(TestModules.Wasm("basic"), TestModules.Cache);
        string copy = CopyArtifact(artifact, "moved.so");

        using WasmModule module = WasmModule.Open(copy);
        using WasmInstance instance = module.Instantiate(TestModules.BasicLinker(module),
            new InstanceOptions { Wasi = new CowWasm.Runtime.Wasi.WasiConfiguration() });

        Assert.Equal(5, instance.GetFunction<int, int, int>("add")(2, 3));
    }

    [Fact]
    public void Encode_Decode_RoundTripsEveryTestGuest()
    {
        foreach (string guest in new[] { "basic", "kv", "wasi" })
        {
            WasmModuleInfo info = WasmBinaryReader.Read(TestModules.Wasm(guest));
            byte[] block = ArtifactMetadata.Encode(info, WasmModule.AbiVersion);
            Assert.Equal(Describe(info), Describe(ArtifactMetadata.Decode(block, guest, WasmModule.AbiVersion)));
        }
    }

    [CowProperty]
    public Property AnyChangedByte_IsRejected()
    {
        byte[] valid = KvBlock();
        return Prop.ForAll(Gen.Choose(0, valid.Length - 1).Zip(Gen.Choose(1, 255)).ToArbitrary(), c =>
        {
            byte[] block = (byte[])valid.Clone();
            block[c.Item1] ^= (byte)c.Item2;
            Assert.Throws<ArtifactFormatException>(() => ArtifactMetadata.Decode(block, "m.so", WasmModule.AbiVersion));
        });
    }

    [CowProperty]
    public Property ChangesBehindAValidHash_AreCaughtByBoundsChecks_NeverByACrash()
    {
        // A block damaged and re-hashed (or crafted) gets past the hash; the bounds checks must still hold.
        byte[] valid = KvBlock();
        var change = Gen.Choose(ArtifactMetadata.HeaderSize - 128, valid.Length - 1)
            .Zip(Gen.Elements<uint>(0, 1, 2, 0x7F, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, (uint)valid.Length, (uint)valid.Length - 1))
            .Zip(Gen.Elements(1, 4));
        return Prop.ForAll(change.ToArbitrary(), c =>
        {
            ((int at, uint value), int width) = c;
            byte[] block = (byte[])valid.Clone();
            if (width == 4 && at + 4 <= block.Length)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(at), value);
            }
            else
            {
                block[at] = (byte)value;
            }

            Rehash(block);
            try
            {
                ArtifactMetadata.Decode(block, "m.so", WasmModule.AbiVersion);
            }
            catch (ArtifactFormatException)
            {
                // a clear rejection is the other acceptable outcome
            }
        });
    }

    [Theory]
    [InlineData(20, 100_000, "type table (100000 × 16 bytes")] // more types than the block holds
    [InlineData(32, 8, "import table (")] // an offset inside the header
    [InlineData(76, 1 << 20, "string table (")] // a pool longer than the block
    [InlineData(16, 4096, "claims 4096 bytes but the artifact exports")]
    [InlineData(52, 1000, "limits (")] // more memories than limit records
    public void DamagedHeaderField_IsNamed(int field, uint value, string expected)
    {
        byte[] block = KvBlock();
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(field), value);
        Rehash(block);

        var e = Assert.Throws<ArtifactFormatException>(() => ArtifactMetadata.Decode(block, "m.so", WasmModule.AbiVersion));

        Assert.Contains(expected, e.Problem, StringComparison.Ordinal);
        Assert.Equal("m.so", e.Path);
    }

    [Fact]
    public void RecordFieldsOutOfRange_AreNamed()
    {
        // kv exports "memory" first, then functions "put", "get", …: 24-byte records from the offset in field 40.
        WasmModuleInfo info = WasmBinaryReader.Read(TestModules.Wasm("kv"));
        Assert.Equal(["memory", "put", "get"], info.Exports.Take(3).Select(e => e.Name));
        int memory = (int)ReadU32(KvBlock(), 40);
        int put = memory + 24;
        int typeCount = info.Types.Count;

        Assert.Contains($"export 1 \"put\" names type {typeCount + 5} of {typeCount}", Reject(b => WriteU32(b, put + 16, (uint)typeCount + 5)));
        Assert.Contains("export 0 \"memory\" is not a function but names type 0", Reject(b => WriteU32(b, memory + 16, 0)));
        Assert.Contains("export 0 name (6 bytes at 4294967280) lies outside its", Reject(b => WriteU32(b, memory, 0xFFFF_FFF0)));
        Assert.Contains("unknown kind 9", Reject(b => b[put + 8] = 9));
        Assert.Contains("export 0 name is not valid UTF-8", Reject(b => b[ReadU32(b, 72) + (int)ReadU32(b, memory)] = 0xFF));
        Assert.Contains("export 2 \"put\" appears twice", Reject(b => WriteU32(b, put + 24, ReadU32(b, put))));
    }

    [Fact]
    public void ForeignFormatOrAbi_IsRejectedByVersion_BeforeTheHash()
    {
        byte[] abi = KvBlock();
        WriteU32(abi, ArtifactMetadata.AbiOffset, WasmModule.AbiVersion + 1);
        byte[] format = KvBlock();
        WriteU32(format, 8, 7);
        byte[] magic = KvBlock();
        magic[0] = (byte)'X';

        Assert.Contains($"built for runtime ABI {WasmModule.AbiVersion + 1}; this runtime speaks ABI {WasmModule.AbiVersion}",
            Decode(abi));
        Assert.Contains("metadata format version 7", Decode(format));
        Assert.Contains("bad magic", Decode(magic));
        Assert.Contains("bad magic", Decode([]));
        Assert.Contains("shorter than its 144-byte header", Decode(KvBlock()[..100]));
    }

    [Fact]
    public void ArtifactForAnotherAbi_IsRejectedClearly_AndUnloaded()
    {
        string copy = CopyArtifact(ArtifactCompiler.Compile(TestModules.Wasm("kv"), TestModules.Cache), "other-abi.so");
        PatchBlock(copy, block => WriteU32(block, ArtifactMetadata.AbiOffset, 99));

        var e = Assert.Throws<ArtifactFormatException>(() => WasmModule.Open(copy));

        Assert.Contains($"built for runtime ABI 99; this runtime speaks ABI {WasmModule.AbiVersion}", e.Message);
        Assert.Contains(copy, e.Message);
        AssertNotMapped(copy);
    }

    [Fact]
    public void ArtifactWithACorruptBlock_IsRejected_AndUnloaded()
    {
        string copy = CopyArtifact(ArtifactCompiler.Compile(TestModules.Wasm("kv"), TestModules.Cache), "corrupt.so");
        PatchBlock(copy, block => block[^1] ^= 0x20);

        var e = Assert.Throws<ArtifactFormatException>(() => WasmModule.Open(copy));

        Assert.Contains("hash mismatch", e.Problem);
        AssertNotMapped(copy);
    }

    [Fact]
    public void SharedObjectWithoutMetadata_IsRejectedAsAnOlderAbi_AndUnloaded()
    {
        string c = Path.Combine(_dir, "old.c");
        string so = Path.Combine(_dir, "old.so");
        File.WriteAllText(c, "__attribute__((visibility(\"default\"))) int cw_abi_version(void) { return 1; }\n");
        using (Process gcc = Process.Start(new ProcessStartInfo("gcc", ["-shared", "-fPIC", "-o", so, c]))!)
        {
            gcc.WaitForExit();
            Assert.Equal(0, gcc.ExitCode);
        }

        var e = Assert.Throws<ArtifactFormatException>(() => WasmModule.Open(so));

        Assert.Contains("exports no cw_metadata metadata block", e.Problem);
        Assert.Contains("ABI 1", e.Problem);
        AssertNotMapped(so);
    }

    [Fact]
    public void MissingOrNonLibraryFile_FailsClearly()
    {
        string missing = Path.Combine(_dir, "absent.so");
        string text = Path.Combine(_dir, "text.so");
        File.WriteAllText(text, "not an ELF file");

        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => WasmModule.Open(missing)).Message);
        Assert.Throws<DllNotFoundException>(() => WasmModule.Open(text));
        Assert.Throws<ArgumentException>(() => WasmModule.Open(""));
    }

    private static byte[] KvBlock() =>
        ArtifactMetadata.Encode(WasmBinaryReader.Read(TestModules.Wasm("kv")), WasmModule.AbiVersion);

    private static string Decode(byte[] block) =>
        Assert.Throws<ArtifactFormatException>(() => ArtifactMetadata.Decode(block, "m.so", WasmModule.AbiVersion)).Problem;

    private static string Reject(Action<byte[]> damage)
    {
        byte[] block = KvBlock();
        damage(block);
        Rehash(block);
        return Decode(block);
    }

    private static uint ReadU32(byte[] block, int at) => BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(at));

    private static void WriteU32(byte[] block, int at, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(at), value);

    /// <summary>Recomputes the block hash, as a forger (or a bug that writes a consistent block) would.</summary>
    private static void Rehash(byte[] block)
    {
        block.AsSpan(ArtifactMetadata.BlockHashOffset, 32).Clear();
        SHA256.HashData(block).CopyTo(block.AsSpan(ArtifactMetadata.BlockHashOffset));
    }

    private string CopyArtifact(Artifact artifact, string name)
    {
        string copy = Path.Combine(_dir, name);
        File.Copy(artifact.LibraryPath, copy);
        return copy;
    }

    /// <summary>Edits the metadata block inside a shared object's file (it sits verbatim in .rodata).</summary>
    private static void PatchBlock(string path, Action<byte[]> edit)
    {
        byte[] file = File.ReadAllBytes(path);
        int at = file.AsSpan().IndexOf(ArtifactMetadata.Magic);
        Assert.True(at >= 0, "the artifact file holds no metadata block");
        Assert.Equal(-1, file.AsSpan(at + 1).IndexOf(ArtifactMetadata.Magic));
        int length = (int)ReadU32(file, at + 16);
        byte[] block = file.AsSpan(at, length).ToArray();
        edit(block);
        block.CopyTo(file, at);
        File.WriteAllBytes(path, file);
    }

    private static void AssertNotMapped(string path) =>
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), line => line.EndsWith(path, StringComparison.Ordinal));

    /// <summary>A canonical text of everything a module declares, for comparing two readings.</summary>
    private static string Describe(WasmModuleInfo info)
    {
        var s = new StringBuilder();
        s.AppendLine(info.ModuleHash);
        s.AppendJoin('\n', info.Types.Select(t => t.ToString())).AppendLine();
        s.AppendJoin('\n', info.Imports.Select(i => i.ToString())).AppendLine();
        s.AppendJoin('\n', info.Exports.Select(e => $"{e.Name} {e.Kind} {e.Index} {e.FunctionType}")).AppendLine();
        s.AppendJoin('\n', info.Globals.Select(g => g.ToString())).AppendLine();
        s.AppendJoin('\n', info.Memories.Select(m => $"memory {m}")).AppendLine();
        s.AppendJoin('\n', info.Tables.Select(t => $"table {t}"));
        return s.ToString();
    }
}
