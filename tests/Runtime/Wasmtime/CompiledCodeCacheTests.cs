using CowWasm.Runtime;
using CowWasm.Runtime.Wasmtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime.Wasmtime;

/// <summary>
/// Wasmtime's compiled code on disk follows the artifact cache's trust rules: private files in private directories, a
/// file writable by others, a symbolic link or a foreign owner refused by name; a damaged file compiled anew.
/// </summary>
public sealed class CompiledCodeCacheTests : IDisposable
{
    private readonly TrustScratch _scratch = new();

    private string Dir => _scratch.Path;

    private WasmtimeOptions Options => new() { CacheDirectory = Dir };

    private static byte[] Eight() => TestModules.Assemble("(module (memory 1) (func (export \"eight\") (result i32) i32.const 8))");

    private string Entry => Directory.GetFiles(Path.Combine(Dir, "wasmtime"), "*.cwasm").Single();

    public void Dispose() => _scratch.Dispose();


    private static int Answer(WasmtimeModule module)
    {
        using IGuestInstance guest = module.Instantiate(new Linker());
        return guest.GetFunction<int>("eight")();
    }

    [Fact]
    public void TheSecondLoad_IsACacheHit_OfAPrivateFile_AndAnswersTheSame()
    {
        using (WasmtimeModule first = WasmtimeModule.Load(Eight(), Options))
        {
            Assert.False(first.Report.CacheHit);
            Assert.Equal(8, Answer(first));
        }

        Assert.Equal("600", TrustScratch.Mode(Entry));
        Assert.Equal("700", TrustScratch.Mode(Path.GetDirectoryName(Entry)!));
        using WasmtimeModule second = WasmtimeModule.Load(Eight(), Options);
        Assert.True(second.Report.CacheHit);
        Assert.Equal(8, Answer(second));

        using WasmtimeModule unbarriered = WasmtimeModule.Load(Eight(), Options with { StoreBarrier = false });
        Assert.False(unbarriered.Report.CacheHit); // another rewrite: another key
    }

    [Theory]
    [InlineData("file")]
    [InlineData("directory")]
    public void AnythingWritableByOthers_IsRefused_AndLeftAlone(string what)
    {
        WasmtimeModule.Load(Eight(), Options).Dispose();
        string target = what == "file" ? Entry : Path.GetDirectoryName(Entry)!;
        TrustScratch.Run("chmod", "go+w", target);
        var e = Assert.Throws<ArtifactTrustException>(() => WasmtimeModule.Load(Eight(), Options));
        Assert.Contains(target, e.Message);
        Assert.True(Path.Exists(target));
    }

    [Fact]
    public void AFileReplacedByASymbolicLink_IsRefused()
    {
        WasmtimeModule.Load(Eight(), Options).Dispose();
        string entry = Entry;
        string elsewhere = Path.Combine(Dir, "elsewhere.cwasm");
        File.Move(entry, elsewhere);
        File.CreateSymbolicLink(entry, elsewhere);
        Assert.Throws<ArtifactTrustException>(() => WasmtimeModule.Load(Eight(), Options));
    }

    [Fact]
    public void AFileOwnedByAnotherUser_IsRefused()
    {
        WasmtimeModule.Load(Eight(), Options).Dispose();
        string entry = Entry;
        if (Environment.UserName != "root")
        {
            // Only root can give a file away; any other user meets a directory root owns instead.
            Assert.Contains("owned by uid 0", Assert.Throws<ArtifactTrustException>(() => FileTrust.CheckDirectory("/usr")).Message);
            return;
        }

        TrustScratch.Run("chown", "65534", entry);
        var e = Assert.Throws<ArtifactTrustException>(() => WasmtimeModule.Load(Eight(), Options));
        Assert.Contains("owned by uid 65534", e.Message);
    }

    [Fact]
    public void ADamagedFile_IsCompiledAnew_AndReplaced()
    {
        WasmtimeModule.Load(Eight(), Options).Dispose();
        byte[] bytes = File.ReadAllBytes(Entry);
        bytes.AsSpan(0, 64).Fill(0x5A); // no longer an ELF file Wasmtime made
        File.WriteAllBytes(Entry, bytes);
        using (WasmtimeModule again = WasmtimeModule.Load(Eight(), Options))
        {
            Assert.False(again.Report.CacheHit);
            Assert.Equal(8, Answer(again));
        }

        using WasmtimeModule hit = WasmtimeModule.Load(Eight(), Options);
        Assert.True(hit.Report.CacheHit);
    }

    [Fact]
    public void ACompile_SweepsEntriesUnusedFor30Days_AndAbandonedTemporaries_AndAHitCountsAsUse()
    {
        WasmtimeModule.Load(Eight(), Options).Dispose();
        string used = Entry;
        string cache = Path.GetDirectoryName(used)!;
        string stale = Path.Combine(cache, new string('a', 64) + ".cwasm");
        string abandoned = Path.Combine(cache, ".deadbeef.123.0.tmp");
        File.WriteAllBytes(stale, [1, 2, 3]);
        File.WriteAllBytes(abandoned, [1]);
        DateTime old = DateTime.UtcNow - TimeSpan.FromDays(40);
        foreach (string path in new[] { stale, abandoned, used })
        {
            File.SetLastWriteTimeUtc(path, old);
        }

        using (WasmtimeModule hit = WasmtimeModule.Load(Eight(), Options))
        {
            Assert.True(hit.Report.CacheHit);
        }

        Assert.True(File.GetLastWriteTimeUtc(used) > old + TimeSpan.FromDays(39), "a hit stamps the entry's last use");
        using (WasmtimeModule other = WasmtimeModule.Load(TestModules.Assemble("(module (func (export \"nine\") (result i32) i32.const 9))"), Options))
        {
            Assert.False(other.Report.CacheHit); // a compile: the sweep runs
        }

        Assert.False(File.Exists(stale));
        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(used));
    }
}
