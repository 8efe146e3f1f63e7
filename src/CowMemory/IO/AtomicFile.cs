using CowWasm.Memory.Native;

namespace CowWasm.Memory.IO;

/// <summary>
/// The one way this project replaces a file atomically: write a temp file in the same directory, optionally fsync
/// it, <c>rename(2)</c> it over the target, and fsync the directory. A reader sees the old file or the new one, never
/// a mix; on failure the temp file is removed and the target is untouched. Used for snapshots, page images and the
/// artifact cache's manifests.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Creates <paramref name="path"/> (replacing an existing file only once the new one is complete) with what
    /// <paramref name="fill"/> writes into the temp file's stream.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="fill">Writes the content. The stream is flushed, and fsynced if <paramref name="durable"/>, after it returns.</param>
    /// <param name="durable">fsync the file and its directory, so the new file survives a crash (snapshots); false for caches.</param>
    /// <param name="mode">The new file's permissions (default 0600: owner read/write).</param>
    public static void Write(string path, Action<FileStream> fill, bool durable = true,
        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(fill);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        string temp = TempPathFor(fullPath);
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                BufferSize = 0,
            };
            if (!OperatingSystem.IsWindows()) // always true here (Linux only); the guard satisfies the platform analyzer
            {
                options.UnixCreateMode = mode;
            }

            using (var file = new FileStream(temp, options))
            {
                fill(file);
                file.Flush(flushToDisk: durable);
            }

            File.Move(temp, fullPath, overwrite: true); // rename(2): readers see the old file or the new one
            if (durable)
            {
                SyncDirectory(directory);
            }
        }
        catch
        {
            File.Delete(temp); // no-op when it was never created or already renamed
            throw;
        }
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> atomically; see <see cref="Write"/>.</summary>
    public static void WriteAllText(string path, string text, bool durable = true) =>
        Write(path, file => file.Write(System.Text.Encoding.UTF8.GetBytes(text)), durable);

    /// <summary>A temp name beside <paramref name="fullPath"/>, unique per process and call, hidden (dot-prefixed).</summary>
    internal static string TempPathFor(string fullPath) => Path.Combine(Path.GetDirectoryName(fullPath)!,
        $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    /// <summary>fsyncs <paramref name="directory"/>, so a file created or renamed in it survives a crash.</summary>
    public static void SyncDirectory(string directory)
    {
        using SafeFdHandle dir = Libc.Open(directory, OpenFlags.O_RDONLY);
        Libc.Fsync(dir);
    }

    /// <summary>
    /// fdatasync: the file's data and the metadata needed to read it back (its size) reach the disk; timestamps may not.
    /// What a write-ahead log needs after an append into space it preallocated.
    /// </summary>
    public static void SyncData(Microsoft.Win32.SafeHandles.SafeFileHandle file) => Libc.Fdatasync(file);
}
