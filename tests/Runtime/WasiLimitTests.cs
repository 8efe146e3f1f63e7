using System.Buffers.Binary;
using System.Text;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasi;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>A guest cannot make the host allocate without bound through WASI, and WASI state does not outlive a read.</summary>
public sealed class WasiLimitTests
{
    private static readonly Dictionary<string, byte[]> s_files = new() { ["f.txt"] = Encoding.UTF8.GetBytes("0123456789") };

    private static WasmInstance Create(WasiConfiguration configuration)
    {
        WasmModule module = TestModules.Get("wasi");
        return module.Instantiate(WasiPreview1.AddTo(new Linker(), module.Info), new InstanceOptions { Wasi = configuration });
    }

    private static uint U32(IGuestInstance guest, int address) => BinaryPrimitives.ReadUInt32LittleEndian(guest.ReadMemory(address, 4));

    /// <summary>Writes <paramref name="count"/> iovecs at 4096, all naming [8192, +<paramref name="length"/>).</summary>
    private static int WriteSameBuffer(IGuestInstance guest, int count, int length)
    {
        Span<byte> iovs = guest.GetMemory(4096, 8 * Math.Min(count, 2048));
        for (int i = 0; i < iovs.Length / 8; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(iovs[(8 * i)..], 8192);
            BinaryPrimitives.WriteUInt32LittleEndian(iovs[(8 * i + 4)..], (uint)length);
        }

        Span<ulong> result = stackalloc ulong[1];
        guest.GetFunction("write").Invoke([1, 4096, (uint)count], result);
        return (int)result[0];
    }

    private static int Open(IGuestInstance guest, string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        bytes.CopyTo(guest.GetMemory(1000, bytes.Length));
        Span<ulong> result = stackalloc ulong[1];
        guest.GetFunction("open").Invoke([1000, (uint)bytes.Length], result);
        return (int)result[0];
    }

    [Fact]
    public void ManyIovecsNamingOneBuffer_AreRefused_AndCapturedOutputIsCappedAndFlagged()
    {
        using WasmInstance guest = Create(new WasiConfiguration { MaxCapturedBytes = 10_000 });
        Assert.Equal(28, WriteSameBuffer(guest, 1025, 1024)); // EINVAL: more than IOV_MAX iovecs
        Assert.Equal(0, guest.Wasi!.Stdout.Length);

        Assert.Equal(0, WriteSameBuffer(guest, 1024, 1024)); // 1 MiB written as far as the guest knows...
        Assert.Equal(1024u * 1024, U32(guest, 140));
        Assert.Equal(10_000, guest.Wasi.Stdout.Length); // ...the host kept the first 10,000 bytes
        Assert.True(guest.Wasi.OutputTruncated);

        guest.ResetHostState();
        Assert.Equal(0, guest.Wasi.Stdout.Length);
        Assert.False(guest.Wasi.OutputTruncated);
    }

    [Fact]
    public void AReset_ReleasesACaptureBufferThatGrewLarge()
    {
        using WasmInstance guest = Create(new WasiConfiguration());
        Assert.Equal(0, WriteSameBuffer(guest, 1024, 4096)); // 4 MiB captured
        Assert.True(guest.Wasi!.Stdout.Capacity >= 4 << 20);
        guest.ResetHostState();
        Assert.True(guest.Wasi.Stdout.Capacity <= 64 * 1024, $"capacity {guest.Wasi.Stdout.Capacity} after reset");
    }

    [Fact]
    public void OpenFiles_AreCapped_AndClosedByAReset()
    {
        using WasmInstance guest = Create(new WasiConfiguration { Files = s_files, MaxOpenFiles = 2 });
        Assert.Equal(0, Open(guest, "f.txt"));
        Assert.Equal(0, Open(guest, "f.txt"));
        Assert.Equal(33, Open(guest, "f.txt")); // EMFILE
        Assert.Equal(2, guest.Wasi!.OpenFileCount);
        guest.ResetHostState();
        Assert.Equal(0, guest.Wasi.OpenFileCount);
        Assert.Equal(0, Open(guest, "f.txt"));
        Assert.Equal(4u, U32(guest, 100)); // numbering starts again
    }

    [Fact]
    public void ReadingPastTheEnd_ReadsNothing_AndAFaultLeavesThePositionWhereItWas()
    {
        using WasmInstance guest = Create(new WasiConfiguration { Files = s_files });
        Assert.Equal(0, Open(guest, "f.txt"));
        int fd = (int)U32(guest, 100);
        var seek = guest.GetFunction<int, long, int, int>("seek");
        var read = guest.GetFunction<int, int, int, int>("read");
        Assert.Equal(0, seek(fd, 100, 0)); // past the end is a valid position
        Assert.Equal(0, read(fd, 2000, 5));
        Assert.Equal(0u, U32(guest, 104));

        Assert.Equal(0, seek(fd, 2, 0));
        Assert.Equal(21, guest.GetFunction<int, long, int>("seek_bad_pointer")(fd, 7)); // EFAULT...
        Assert.Equal(21, read(fd, 65534, 5)); // ...and EFAULT: the destination runs past memory
        Assert.Equal(0, read(fd, 2000, 3)); // the position did not move either time
        Assert.Equal("234", Encoding.UTF8.GetString(guest.GetMemory(2000, 3)));
        Assert.Equal(28, seek(fd, long.MaxValue, 1)); // EINVAL, not a wrapped position
    }

    [Fact]
    public void APooledReadsOpenFiles_AreClosedBeforeTheNextRead_AndACommitClearsTheLeadersOutput()
    {
        WasmModule module = TestModules.Get("wasi");
        using var pool = GuestPool.Create(module, WasiPreview1.AddTo(new Linker(), module.Info), new PoolOptions
        {
            ReplicaCount = 1,
            Instance = new InstanceOptions { Wasi = new WasiConfiguration { Files = s_files } },
            Sync = new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ReplicaTracker = TrackerKind.StoreBarrier },
        });
        for (int i = 0; i < 3; i++)
        {
            (int errno, uint fd, int open) = pool.Read(g => (Open(g, "f.txt"), U32(g, 100), g.Wasi!.OpenFileCount));
            Assert.Equal((0, 4u, 1), (errno, fd, open));
        }

        Assert.Equal(0, pool.Write(g => WriteSameBuffer(g, 1, 100)));
        Assert.Equal(0, pool.Write(g => (int)g.Wasi!.Stdout.Length)); // the committed write's output is gone
    }
}
