using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// Wasmtime's compiled code on disk, under the artifact cache's root in <c>wasmtime/KEY.cwasm</c>. The key hashes the
/// rewritten module with the binding's version and the engine settings (<see cref="WasmtimeEngine.SettingsKey"/>), so a
/// changed module, rewrite, binding or setting misses.
/// </summary>
/// <remarks>
/// Loading compiled code is running it, so the rules are the artifact cache's: every directory on the way is this
/// user's and writable by nobody else (<see cref="FileTrust.CheckDirectory"/>); the file is opened without following
/// links, its owner and mode checked through that descriptor, and its bytes read through the same descriptor. A file
/// Wasmtime refuses (another version, damaged) is removed and compiled anew. Files are published whole (written to a
/// private temporary name, then renamed). A hit stamps the file's write time as its last use; each compile sweeps entries
/// unused for <see cref="UnusedLifetime"/> and temporary files left by crashed writers, so the directory does not grow
/// with every module and Wasmtime version that ever ran.
/// </remarks>
internal sealed class CompiledCodeCache(string directory)
{
    public string Directory { get; } = directory;

    /// <summary>Entries not used for this long are deleted when something new is compiled.</summary>
    public static TimeSpan UnusedLifetime { get; } = TimeSpan.FromDays(30);

    /// <summary>A temporary file this old belongs to a writer that died.</summary>
    private static readonly TimeSpan s_abandoned = TimeSpan.FromHours(1);

    public static CompiledCodeCache For(WasmtimeOptions options) =>
        new(Path.Combine(CacheRoot.Resolve(options.CacheDirectory), "wasmtime"));

    public static string Key(byte[] rewritten)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(rewritten);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(WasmtimeEngine.SettingsKey));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private string PathOf(string key) => Path.Combine(Directory, key + ".cwasm");

    /// <summary>The cached module for <paramref name="key"/>, or null on a miss (a damaged entry is removed).</summary>
    /// <exception cref="ArtifactTrustException">A directory or the file could have been written by someone else.</exception>
    public global::Wasmtime.Module? TryLoad(global::Wasmtime.Engine engine, string key)
    {
        string path = PathOf(key);
        if (!File.Exists(path))
        {
            return null;
        }

        FileTrust.CheckDirectory(Path.GetDirectoryName(Directory)!);
        FileTrust.CheckDirectory(Directory);
        byte[] bytes;
        using (SafeFileHandle handle = FileTrust.OpenLibrary(path, requirePrivate: true))
        {
            long length = RandomAccess.GetLength(handle);
            if (length > int.MaxValue)
            {
                File.Delete(path);
                return null;
            }

            bytes = new byte[length];
            int at = 0;
            while (at < bytes.Length)
            {
                int read = RandomAccess.Read(handle, bytes.AsSpan(at), at);
                if (read == 0)
                {
                    break;
                }

                at += read;
            }
        }

        try
        {
            global::Wasmtime.Module module = global::Wasmtime.Module.Deserialize(engine, "guest", bytes);
            TryStamp(path);
            return module;
        }
        catch (global::Wasmtime.WasmtimeException)
        {
            File.Delete(path); // another Wasmtime's or damaged: compile anew
            return null;
        }
    }

    /// <summary>Publishes <paramref name="module"/>'s compiled code; a failure to write only costs the next start a compile.</summary>
    public void TryStore(string key, global::Wasmtime.Module module)
    {
        string? temporary = null;
        try
        {
            if (!OperatingSystem.IsLinux())
            {
                return;
            }

            FileTrust.EnsurePrivateDirectory(Path.GetDirectoryName(Directory)!);
            FileTrust.EnsurePrivateDirectory(Directory);
            byte[] bytes = module.Serialize();
            temporary = Path.Combine(Directory, $".{key}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
            using (var stream = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = FileTrust.PrivateFile,
            }))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, PathOf(key), overwrite: true);
            temporary = null;
            Sweep(DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArtifactTrustException)
        {
            // The cache is an optimization; the module is compiled and usable.
        }
        finally
        {
            if (temporary is not null)
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Deletes entries unused for <see cref="UnusedLifetime"/> and abandoned temporary files (best effort).</summary>
    internal void Sweep(DateTime now)
    {
        foreach (FileInfo file in new DirectoryInfo(Directory).EnumerateFiles())
        {
            bool stale = file.Name.EndsWith(".cwasm", StringComparison.Ordinal) && now - file.LastWriteTimeUtc > UnusedLifetime;
            bool abandoned = file.Name.StartsWith('.') && file.Name.EndsWith(".tmp", StringComparison.Ordinal) && now - file.LastWriteTimeUtc > s_abandoned;
            if ((stale || abandoned) && file.LinkTarget is null)
            {
                try
                {
                    file.Delete();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // another process may be publishing or using it; the next sweep tries again
                }
            }
        }
    }

    private static void TryStamp(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // last use, for the sweep
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
