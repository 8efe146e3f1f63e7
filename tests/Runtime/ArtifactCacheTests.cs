using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

public sealed class ArtifactCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-cache-test-").FullName;

    private ArtifactOptions Options => new() { CacheDirectory = _dir };

    private static byte[] Seven() => TestModules.Assemble("(module (func (export \"seven\") (result i32) i32.const 7))");

    [Fact]
    public void SecondCompile_IsACacheHit_ThatSkipsTheCompiler()
    {
        byte[] wasm = Seven();
        Artifact first = ArtifactCompiler.Compile(wasm, Options);
        var stages = new List<ArtifactStage>();
        Artifact second = ArtifactCompiler.Compile(wasm, Options, new SyncProgress(p => stages.Add(p.Stage)));

        Assert.False(first.FromCache);
        Assert.True(first.CompileTime > TimeSpan.Zero);
        Assert.True(second.FromCache);
        Assert.Equal(TimeSpan.Zero, second.CompileTime);
        Assert.Equal([ArtifactStage.CacheHit], stages);
        Assert.Equal(first.LibraryPath, second.LibraryPath);
    }

    [Theory]
    [InlineData("truncate library")]
    [InlineData("garbage manifest")]
    [InlineData("missing library")]
    public void CorruptEntry_IsDetectedAndRebuilt(string damage)
    {
        byte[] wasm = Seven();
        Artifact first = ArtifactCompiler.Compile(wasm, Options);
        string manifest = Path.Combine(Path.GetDirectoryName(first.LibraryPath)!, "manifest.json");
        switch (damage)
        {
            case "truncate library":
                using (var stream = new FileStream(first.LibraryPath, FileMode.Open))
                {
                    stream.SetLength(stream.Length / 2);
                }

                break;
            case "garbage manifest":
                File.WriteAllText(manifest, "{ not json");
                break;
            default:
                File.Delete(first.LibraryPath);
                break;
        }

        Artifact rebuilt = ArtifactCompiler.Compile(wasm, Options);

        Assert.False(rebuilt.FromCache);
        Assert.Equal(first.LibraryBytes, rebuilt.LibraryBytes);
        using WasmModule module = WasmModule.Open(rebuilt);
        using WasmInstance instance = module.Instantiate(new Linker());
        Assert.Equal(7, instance.GetFunction<int>("seven")());
    }

    [Fact]
    public async Task ConcurrentCompilesOfOneModule_AllGetTheSameCompleteArtifact()
    {
        byte[] wasm = Seven();
        Artifact[] results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => ArtifactCompiler.CompileAsync(wasm, Options))));
        Assert.Single(results.Select(r => r.LibraryPath).Distinct());
        Assert.Empty(Directory.GetDirectories(Path.Combine(_dir, "tmp"))); // losers cleaned up
        Artifact again = ArtifactCompiler.Compile(wasm, Options);
        Assert.True(again.FromCache);
    }

    [Fact]
    public void BuildDirectoriesOfDeadProcesses_AreSwept_LiveOnesAndOtherNamespacesKept()
    {
        string tmp = Path.Combine(_dir, "tmp");
        string ns = ArtifactCache.PidNamespace;
        string Make(string name) => Directory.CreateDirectory(Path.Combine(tmp, name)).FullName;
        string dead = Make($"abc-{ns}-2147483647-0123"); // no such pid, our namespace
        string live = Make($"abc-{ns}-{Environment.ProcessId}-4567");
        string foreign = Make("abc-4026599999-1-89ab"); // pid 1 of another namespace: cannot be checked from here
        string staleForeign = Make("abc-4026599999-1-cdef");
        string oldLayout = Make("leftover-from-an-old-layout");
        Directory.SetLastWriteTimeUtc(staleForeign, DateTime.UtcNow.AddDays(-2));
        Directory.SetLastWriteTimeUtc(oldLayout, DateTime.UtcNow.AddDays(-2));
        File.WriteAllText(Path.Combine(dead, "m.c"), "/* half-written */");

        ArtifactCompiler.Compile(Seven(), Options);

        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(foreign)); // a recent build of another namespace is left alone
        Assert.False(Directory.Exists(staleForeign));
        Assert.False(Directory.Exists(oldLayout));
        Directory.Delete(live);
    }

    [Fact]
    public void AnEntryThatCannotBeReadForAnotherReason_IsLeftAlone_AndTheErrorPropagates()
    {
        // Stands in for EMFILE or EIO: the read fails, but that says nothing about the entry, which must survive.
        Artifact first = ArtifactCompiler.Compile(Seven(), Options);
        string manifest = Path.Combine(Path.GetDirectoryName(first.LibraryPath)!, "manifest.json");
        string saved = manifest + ".saved";
        File.Move(manifest, saved);
        Directory.CreateDirectory(manifest); // reading it fails with EISDIR, not with damage
        Assert.ThrowsAny<UnauthorizedAccessException>(() => ArtifactCompiler.Compile(Seven(), Options));
        Assert.True(File.Exists(first.LibraryPath));
        Directory.Delete(manifest);
        File.Move(saved, manifest);
        Assert.True(ArtifactCompiler.Compile(Seven(), Options).FromCache);
    }

    [Fact]
    public void SameSizeDamageWithTheOldWriteTime_IsCaughtOnlyWhenHashing()
    {
        byte[] wasm = Seven();
        Artifact first = ArtifactCompiler.Compile(wasm, Options);
        DateTime written = File.GetLastWriteTimeUtc(first.LibraryPath);
        byte[] bytes = File.ReadAllBytes(first.LibraryPath);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(first.LibraryPath, bytes);
        File.SetLastWriteTimeUtc(first.LibraryPath, written);

        // The fast path trusts an unchanged size and write time (documented); VerifyLibraryHash does not.
        Assert.True(ArtifactCompiler.Compile(wasm, Options).FromCache);
        Artifact verified = ArtifactCompiler.Compile(wasm, Options with { VerifyLibraryHash = true });

        Assert.False(verified.FromCache);
        Assert.NotEqual(bytes, File.ReadAllBytes(verified.LibraryPath));
    }

    [Fact]
    public void LibraryWithANewWriteTime_IsRehashed_ThenRecorded()
    {
        // A copied cache (or a manifest from before size and time were recorded): hashed once, then trusted.
        byte[] wasm = Seven();
        Artifact first = ArtifactCompiler.Compile(wasm, Options);
        string manifest = Path.Combine(Path.GetDirectoryName(first.LibraryPath)!, "manifest.json");
        DateTime copied = new(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(first.LibraryPath, copied);

        Artifact again = ArtifactCompiler.Compile(wasm, Options);

        Assert.True(again.FromCache);
        Assert.Contains($"\"LibraryWriteTicks\":{copied.Ticks}", File.ReadAllText(manifest));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(manifest)!, "*.tmp"));
    }

    [Fact]
    public void CacheKey_DependsOnBytesAndFlags()
    {
        byte[] wasm = Seven();
        string key = ArtifactCache.Key(wasm, Options);
        Assert.NotEqual(key, ArtifactCache.Key(wasm, Options with { OptimizationFlag = "-O1" }));
        byte[] other = TestModules.Assemble("(module (func (export \"seven\") (result i32) i32.const 8))");
        Assert.NotEqual(key, ArtifactCache.Key(other, Options));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class SyncProgress(Action<ArtifactProgress> report) : IProgress<ArtifactProgress>
    {
        public void Report(ArtifactProgress value) => report(value);
    }
}
