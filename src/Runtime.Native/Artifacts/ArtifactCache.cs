using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CowWasm.Memory;
using CowWasm.Memory.IO;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The on-disk artifact cache: <c>ROOT/artifacts/KEY/</c> holds a published artifact (<c>module.so</c> and a
/// manifest recording its SHA-256, size and write time); <c>ROOT/tmp/</c> holds builds in progress, named
/// <c>KEY-PIDNS-PID-GUID</c>. Lookup, verification, publication and sweeping live here; building is
/// <see cref="ArtifactBuilder"/>'s.
/// </summary>
/// <remarks>
/// Publication is atomic: an artifact is built in a private work directory and renamed into place, so a concurrent
/// process sees either nothing or a complete artifact; if two build the same key, the first rename wins and the
/// other's work is discarded. A lookup re-hashes the library when its size or write time differ from the manifest
/// (or always, with <see cref="ArtifactOptions.VerifyLibraryHash"/>); a truncated or corrupt entry is deleted so it
/// can be rebuilt. Thread-safe and process-safe.
/// </remarks>
internal sealed class ArtifactCache(string root)
{
    private const string ManifestName = "manifest.json";

    /// <summary>The cache for <paramref name="options"/>' directory.</summary>
    public static ArtifactCache For(ArtifactOptions options) => new(options.ResolveCacheDirectory());

    /// <summary>The root directory.</summary>
    public string Root { get; } = root;

    /// <summary>The key of <paramref name="wasm"/> built with <paramref name="options"/>: SHA-256 of the wasm's hash and the build's fingerprint.</summary>
    public static string Key(byte[] wasm, ArtifactOptions options)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(SHA256.HashData(wasm));
        hash.AppendData(Encoding.UTF8.GetBytes(ArtifactBuilder.Fingerprint(options)));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The library of a sound entry for <paramref name="key"/>, with its size; false (and the entry removed if damaged) otherwise.</summary>
    /// <exception cref="ArtifactTrustException">The root, <c>artifacts/</c> or the entry could have been written by someone else.</exception>
    public bool TryGet(string key, bool verifyHash, out string libraryPath, out long size)
    {
        string dir = EntryPath(key);
        libraryPath = Path.Combine(dir, ArtifactBuilder.LibraryName);
        size = 0;
        if (!Directory.Exists(Root))
        {
            return false;
        }

        FileTrust.CheckDirectory(Root);
        string artifacts = Path.Combine(Root, "artifacts");
        if (!Directory.Exists(artifacts))
        {
            return false;
        }

        FileTrust.CheckDirectory(artifacts);
        if (Directory.Exists(dir))
        {
            FileTrust.CheckDirectory(dir); // never delete or trust what someone else may have put there
        }

        return TryUse(dir, verifyHash, out size);
    }

    /// <summary>
    /// Opens a published library for loading: the root, <c>artifacts/</c> and the entry must be this user's and
    /// writable by nobody else; the library is opened without following links, checked the same way through the
    /// descriptor, and its size and write time (or, with <paramref name="verifyHash"/> or when they changed, its
    /// SHA-256) compared with the manifest through that descriptor. Load it with <see cref="FileTrust.Load"/>.
    /// </summary>
    /// <exception cref="ArtifactTrustException">Something on the way could have been written by someone else.</exception>
    /// <exception cref="ArtifactFormatException">The library no longer matches its manifest.</exception>
    public static SafeFileHandle OpenTrusted(string libraryPath, bool verifyHash)
    {
        string entry = Path.GetDirectoryName(libraryPath)!;
        string artifacts = Path.GetDirectoryName(entry)!;
        foreach (string dir in new[] { Path.GetDirectoryName(artifacts)!, artifacts, entry })
        {
            FileTrust.CheckDirectory(dir);
        }

        SafeFileHandle handle = FileTrust.OpenLibrary(libraryPath, requirePrivate: true);
        try
        {
            Manifest? recorded = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(Path.Combine(entry, ManifestName)));
            long length = RandomAccess.GetLength(handle);
            bool unchanged = recorded is not null && !verifyHash && recorded.LibraryBytes > 0 && recorded.LibraryBytes == length &&
                             recorded.LibraryWriteTicks == File.GetLastWriteTimeUtc(handle).Ticks;
            if (!unchanged && (recorded is null || recorded.LibrarySha256 != HashThrough(handle, length)))
            {
                throw new ArtifactFormatException(libraryPath, "its bytes no longer match the hash its manifest recorded");
            }

            return handle;
        }
        catch (Exception e) when (e is (IOException or JsonException) and not (ArtifactTrustException or ArtifactFormatException))
        {
            handle.Dispose();
            throw new ArtifactFormatException(libraryPath, $"its manifest cannot be read ({e.Message})");
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static string HashThrough(SafeFileHandle handle, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[1 << 20];
        for (long at = 0; at < length;)
        {
            int read = RandomAccess.Read(handle, buffer, at);
            if (read == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, read);
            at += read;
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>A fresh private work directory for building <paramref name="key"/>, after sweeping abandoned ones.</summary>
    public string CreateWorkDirectory(string key)
    {
        FileTrust.EnsurePrivateDirectory(Root);
        string tmp = Path.Combine(Root, "tmp");
        FileTrust.EnsurePrivateDirectory(tmp);
        SweepAbandoned(tmp);
        string work = Path.Combine(tmp, $"{key}-{PidNamespace}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        FileTrust.CreatePrivateDirectory(work);
        return work;
    }

    /// <summary>
    /// Hashes the library built in <paramref name="work"/>, writes its manifest, and renames the directory into place
    /// as <paramref name="key"/>'s entry. Returns the published library's path.
    /// </summary>
    /// <exception cref="ArtifactCompilationException">Another process published an unusable entry for the same key first.</exception>
    public async Task<string> PublishAsync(string work, string key, ArtifactOptions options, CancellationToken cancellationToken)
    {
        string library = Path.Combine(work, ArtifactBuilder.LibraryName);
        FileTrust.MakePrivate(library); // gcc made it world-readable and executable
        await using (FileStream stream = File.OpenRead(library))
        {
            var manifest = new Manifest(Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false)),
                ArtifactBuilder.RuntimeVersion, string.Join(' ', ArtifactBuilder.CompilerArguments(options)))
            {
                LibraryBytes = stream.Length,
                LibraryWriteTicks = File.GetLastWriteTimeUtc(library).Ticks, // a rename into the cache keeps it
            };
            AtomicFile.WriteAllText(Path.Combine(work, ManifestName), JsonSerializer.Serialize(manifest), durable: false);
        }

        string final = EntryPath(key);
        FileTrust.EnsurePrivateDirectory(Path.Combine(Root, "artifacts"));
        try
        {
            Directory.Move(work, final);
        }
        catch (IOException) when (Directory.Exists(final))
        {
            // Another process published the same key first; use theirs if it is sound.
            if (!TryUse(final, verifyHash: true, out _))
            {
                throw new ArtifactCompilationException($"A concurrent build left an unusable artifact at {final}.");
            }
        }

        return Path.Combine(final, ArtifactBuilder.LibraryName);
    }

    private string EntryPath(string key) => Path.Combine(Root, "artifacts", key);

    /// <summary>
    /// Deletes build directories whose process died before finishing (killed mid-compile): their names carry the
    /// builder's PID namespace and pid (<c>KEY-NS-PID-GUID</c>). A Trealla build leaves ~28 MB of C behind otherwise.
    /// A build from another PID namespace (a container sharing the cache) cannot be checked from here, so it is left
    /// alone unless untouched for a day.
    /// </summary>
    internal static void SweepAbandoned(string tmp) => SweepAbandoned(tmp, PidNamespace, pid => Directory.Exists($"/proc/{pid}"));

    internal static void SweepAbandoned(string tmp, string ourNamespace, Func<int, bool> isAlive)
    {
        foreach (string dir in Directory.EnumerateDirectories(tmp))
        {
            string[] parts = Path.GetFileName(dir).Split('-');
            bool ours = parts.Length == 4 && parts[1] == ourNamespace;
            bool keep = ours
                ? int.TryParse(parts[2], out int pid) && isAlive(pid)
                : Directory.GetLastWriteTimeUtc(dir) > DateTime.UtcNow.AddDays(-1);
            if (!keep)
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                    // another sweeper got there first
                }
            }
        }
    }

    /// <summary>This process's PID namespace (the inode of <c>/proc/self/ns/pid</c>), part of every work directory's name.</summary>
    internal static string PidNamespace { get; } =
        new FileInfo("/proc/self/ns/pid").LinkTarget is { } target && target.StartsWith("pid:[", StringComparison.Ordinal)
            ? target[5..^1]
            : "0";

    private static bool TryUse(string dir, bool verifyHash, out long size)
    {
        size = 0;
        string library = Path.Combine(dir, ArtifactBuilder.LibraryName);
        string manifest = Path.Combine(dir, ManifestName);
        if (!Directory.Exists(dir))
        {
            return false;
        }

        try
        {
            var recorded = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest));
            var file = new FileInfo(library);
            if (recorded is not null && !verifyHash && file.Exists && recorded.Matches(file))
            {
                // Unchanged since it was hashed. Hashing Trealla's 5.4 MB library on every load cost 3.5 of 6.9 ms
                // (bench ArtifactOpenBenchmarks.LoadThroughCache, 2026-11-21) against 0.15 ms for the open itself.
                size = file.Length;
                return true;
            }

            using FileStream stream = File.OpenRead(library);
            string actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            if (recorded is not null && recorded.LibrarySha256 == actual)
            {
                size = stream.Length;
                if (!recorded.Matches(file))
                {
                    RefreshManifest(manifest, recorded with { LibraryBytes = file.Length, LibraryWriteTicks = file.LastWriteTimeUtc.Ticks });
                }

                return true;
            }
        }
        catch (Exception e) when (e is JsonException or FileNotFoundException or DirectoryNotFoundException or EndOfStreamException)
        {
            // fall through: a damaged or half-written entry is rebuilt. Any other failure (EMFILE, EIO, EACCES) says
            // nothing about the entry: it propagates, and the entry stays.
        }

        // Corrupt, truncated or half-deleted: remove it so the rebuild can publish.
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        return false;
    }

    /// <summary>
    /// Records the size and write time of a library whose hash was just confirmed (a copied cache, or a manifest
    /// from before they were recorded), so later loads skip the hash. Atomic; best effort.
    /// </summary>
    private static void RefreshManifest(string path, Manifest manifest)
    {
        try
        {
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(manifest), durable: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a read-only cache keeps working; its loads just keep hashing
        }
    }

    private sealed record Manifest(string LibrarySha256, string RuntimeVersion, string Flags)
    {
        /// <summary>The library's size when it was hashed (0 in manifests written before this was recorded).</summary>
        public long LibraryBytes { get; init; }

        /// <summary>The library's last-write time (UTC ticks) when it was hashed.</summary>
        public long LibraryWriteTicks { get; init; }

        public bool Matches(FileInfo library) =>
            LibraryBytes > 0 && LibraryBytes == library.Length && LibraryWriteTicks == library.LastWriteTimeUtc.Ticks;
    }
}
