using System.Buffers.Binary;
using System.Text;
using CowWasm.Runtime.Wasi;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

public sealed class WasiTests
{
    private static WasmInstance Create(WasiConfiguration configuration)
    {
        WasmModule module = TestModules.Get("wasi");
        return module.Instantiate(WasiPreview1.AddTo(new Linker(), module.Info), new InstanceOptions { Wasi = configuration });
    }

    private static uint U32(WasmInstance guest, int address) => BinaryPrimitives.ReadUInt32LittleEndian(guest.GetMemory(address, 4));

    private static int Open(WasmInstance guest, string path)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(path);
        bytes.CopyTo(guest.GetMemory(1000, bytes.Length));
        return guest.GetFunction<int, int, int>("open")(1000, bytes.Length);
    }

    [Fact]
    public void InMemoryFiles_OpenReadSeekClose()
    {
        using WasmInstance guest = Create(new WasiConfiguration
        {
            Files = new Dictionary<string, byte[]> { ["prog.pl"] = Encoding.UTF8.GetBytes("test(123).\n") },
        });
        Assert.Equal(0, guest.GetFunction<int, int>("prestat")(3));
        Assert.Equal(0, Open(guest, "prog.pl"));
        int fd = (int)U32(guest, 100);
        var read = guest.GetFunction<int, int, int, int>("read");

        Assert.Equal(0, read(fd, 2000, 5));
        Assert.Equal(5u, U32(guest, 104));
        Assert.Equal("test(", Encoding.UTF8.GetString(guest.GetMemory(2000, 5)));
        Assert.Equal(0, guest.GetFunction<int, long, int, int>("seek")(fd, -4, 2));
        Assert.Equal(7u, U32(guest, 112));
        Assert.Equal(0, read(fd, 2000, 100));
        Assert.Equal(4u, U32(guest, 104));
        Assert.Equal(").\n", Encoding.UTF8.GetString(guest.GetMemory(2001, 3)));
        Assert.Equal(0, guest.GetFunction<int, int>("close")(fd));
        Assert.Equal(8, guest.GetFunction<int, int>("close")(fd)); // EBADF
        Assert.Equal(44, Open(guest, "missing.pl")); // ENOENT
    }

    [Fact]
    public void WithoutFiles_PrestatAnswersEbadf_AndPathOpenToo()
    {
        using WasmInstance guest = Create(new WasiConfiguration());
        Assert.Equal(8, guest.GetFunction<int, int>("prestat")(3));
        Assert.Equal(8, Open(guest, "anything"));
    }

    [Fact]
    public void ArgsEnvironClock_AndUnimplementedCallsAnswerEnosys()
    {
        using WasmInstance guest = Create(new WasiConfiguration
        {
            Arguments = ["prolog", "-q"],
            Environment = new Dictionary<string, string> { ["A"] = "1", ["BB"] = "22" },
        });
        Assert.Equal(0, guest.GetFunction<int>("args")());
        Assert.Equal(2u, U32(guest, 120));
        Assert.Equal(10u, U32(guest, 124));
        Assert.Equal("prolog\0-q\0", Encoding.UTF8.GetString(guest.GetMemory(400, 10)));
        Assert.Equal(407u, U32(guest, 304));
        Assert.Equal(0, guest.GetFunction<int>("environ_sizes")());
        Assert.Equal(2u, U32(guest, 128));
        Assert.Equal(10u, U32(guest, 132)); // "A=1\0" + "BB=22\0"
        Assert.Equal(0, guest.GetFunction<int, int>("clock")(0));
        long now = (long)BinaryPrimitives.ReadUInt64LittleEndian(guest.GetMemory(136, 8));
        Assert.InRange(now, DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds() * 1_000_000, long.MaxValue);
        Assert.Equal(28, guest.GetFunction<int, int>("clock")(99)); // EINVAL
        Assert.Equal(21, guest.GetFunction<int>("clock_bad_pointer")()); // EFAULT, not a crash
        Assert.Equal(52, guest.GetFunction<int>("yield")()); // ENOSYS
    }

    [Fact]
    public void WasiCall_FromAnInstanceWithoutWasi_IsAHostError()
    {
        WasmModule module = TestModules.Get("wasi");
        using WasmInstance guest = module.Instantiate(WasiPreview1.AddTo(new Linker(), module.Info));
        var e = Assert.Throws<WasmTrapException>(() => guest.GetFunction<int>("environ_sizes")());
        Assert.Equal(TrapKind.HostError, e.Kind);
        Assert.Contains("InstanceOptions.Wasi", e.InnerException!.Message);
    }
}
