using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// The cache never loads native code someone else could have written: everything it creates is private, and a root,
/// <c>artifacts/</c>, entry or library that is foreign, writable by others or a symbolic link is refused by name.
/// </summary>
public sealed class ArtifactCacheTrustTests : IDisposable
{
    private readonly TrustScratch _scratch = new();

    private string Dir => _scratch.Path;

    private ArtifactOptions Options => new() { CacheDirectory = Dir };

    private static byte[] Eight() => TestModules.Assemble("(module (func (export \"eight\") (result i32) i32.const 8))");

    public void Dispose() => _scratch.Dispose();


    [Fact]
    public void WhatTheCacheCreates_IsPrivate()
    {
        Artifact artifact = ArtifactCompiler.Compile(Eight(), Options);
        string entry = Path.GetDirectoryName(artifact.LibraryPath)!;
        Assert.Equal("700", TrustScratch.Mode(Dir));
        Assert.Equal("700", TrustScratch.Mode(Path.Combine(Dir, "artifacts")));
        Assert.Equal("700", TrustScratch.Mode(Path.Combine(Dir, "tmp")));
        Assert.Equal("700", TrustScratch.Mode(entry));
        Assert.Equal("600", TrustScratch.Mode(artifact.LibraryPath));
        Assert.Equal("600", TrustScratch.Mode(Path.Combine(entry, "manifest.json")));
        using WasmModule module = WasmModule.Open(artifact);
        Assert.Equal(8, module.Instantiate(new Linker()).GetFunction<int>("eight")());
    }

    [Theory]
    [InlineData("root")]
    [InlineData("artifacts")]
    [InlineData("entry")]
    [InlineData("library")]
    public void AnythingWritableByOthers_IsRefused_AndLeftAlone(string what)
    {
        Artifact artifact = ArtifactCompiler.Compile(Eight(), Options);
        string entry = Path.GetDirectoryName(artifact.LibraryPath)!;
        string target = what switch
        {
            "root" => Dir,
            "artifacts" => Path.Combine(Dir, "artifacts"),
            "entry" => entry,
            _ => artifact.LibraryPath,
        };
        TrustScratch.Run("chmod", "go+w", target);

        var e = Assert.Throws<ArtifactTrustException>(() => WasmModule.Load(Eight(), Options));
        Assert.Equal(target, e.Path);
        Assert.Contains("writable by group or others", e.Message);
        Assert.True(File.Exists(artifact.LibraryPath)); // refused, not deleted or rebuilt
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), line => line.EndsWith(artifact.LibraryPath, StringComparison.Ordinal));
    }

    [Fact]
    public void ALibraryReplacedByASymbolicLink_IsRefused()
    {
        Artifact artifact = ArtifactCompiler.Compile(Eight(), Options);
        string elsewhere = Path.Combine(Dir, "elsewhere.so");
        File.Move(artifact.LibraryPath, elsewhere);
        File.CreateSymbolicLink(artifact.LibraryPath, elsewhere);

        var e = Assert.Throws<ArtifactTrustException>(() => WasmModule.Open(artifact));
        Assert.Contains("symbolic link", e.Message);
    }

    [Fact]
    public void AnEntryReplacedByASymbolicLink_IsRefused()
    {
        Artifact artifact = ArtifactCompiler.Compile(Eight(), Options);
        string entry = Path.GetDirectoryName(artifact.LibraryPath)!;
        string moved = Path.Combine(Dir, "moved-entry");
        Directory.Move(entry, moved);
        Directory.CreateSymbolicLink(entry, moved);

        var e = Assert.Throws<ArtifactTrustException>(() => WasmModule.Load(Eight(), Options));
        Assert.Equal(entry, e.Path);
        Assert.Contains("symbolic link", e.Message);
    }

    [Fact]
    public void AnEntryOwnedByAnotherUser_IsRefused()
    {
        if (Environment.UserName != "root")
        {
            // Only root can give a file away; any other user meets a directory root owns instead.
            var foreign = Assert.Throws<ArtifactTrustException>(() => FileTrust.CheckDirectory("/usr"));
            Assert.Contains("owned by uid 0", foreign.Message);
            return;
        }

        Artifact artifact = ArtifactCompiler.Compile(Eight(), Options);
        string entry = Path.GetDirectoryName(artifact.LibraryPath)!;
        TrustScratch.Run("chown", "65534", entry);
        var e = Assert.Throws<ArtifactTrustException>(() => WasmModule.Load(Eight(), Options));
        Assert.Equal(entry, e.Path);
        Assert.Contains("owned by uid 65534", e.Message);
    }

    [Fact]
    public void ARelativeFallbackCacheDirectory_IsAnError_NotTheCurrentDirectory()
    {
        var none = new ArtifactOptions();
        Func<string, string?> noEnvironment = _ => null;
        Assert.Contains("HOME is not set", Assert.Throws<InvalidOperationException>(() => none.ResolveCacheDirectory(noEnvironment, "")).Message);
        Assert.Contains("is relative", Assert.Throws<InvalidOperationException>(() =>
            none.ResolveCacheDirectory(name => name == "XDG_CACHE_HOME" ? "cache" : null, "")).Message);
        Assert.Equal("/home/u/.cache/cowwasm", none.ResolveCacheDirectory(noEnvironment, "/home/u"));
        Assert.Equal("/x/cowwasm", none.ResolveCacheDirectory(name => name == "XDG_CACHE_HOME" ? "/x" : null, ""));
        Assert.Equal(Path.GetFullPath("given"), new ArtifactOptions { CacheDirectory = "given" }.ResolveCacheDirectory(noEnvironment, ""));
    }
}
