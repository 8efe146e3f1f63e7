using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Prolog;

/// <summary>
/// The Trealla guest: the wasm embedded (base64) in the npm package <c>trealla@0.17.10</c>'s <c>trealla.js</c>,
/// fetched with <c>npm pack</c> at setup time, checked against a pinned SHA-256 and cached. Never committed.
/// </summary>
public static class TreallaPackage
{
    /// <summary>The npm package and version.</summary>
    public const string PackageSpec = "trealla@0.17.10";

    /// <summary>SHA-256 of the wasm (2,585,435 bytes) inside that package.</summary>
    public const string WasmSha256 = "5d6fcf41b960b9ce1b3bab65acf25f02b531c880c9dc31eab8c58409caf7cf60";

    private const string WasmMagicBase64 = "AGFzbQ"; // "\0asm" in base64

    /// <summary>Where <see cref="FetchAsync"/> keeps the wasm by default: <c>{artifact cache}/guests</c>.</summary>
    public static string DefaultDirectory => Path.Combine(new ArtifactOptions().ResolveCacheDirectory(), "guests");

    /// <summary>
    /// Returns the path of the verified wasm, downloading it first if the cache lacks it or holds a corrupt copy.
    /// </summary>
    /// <exception cref="GuestPackageException">npm failed (offline, registry error), the package does not hold
    /// the wasm where expected, or its hash differs from <see cref="WasmSha256"/>.</exception>
    /// <exception cref="ToolNotFoundException">npm is not installed.</exception>
    public static async Task<string> FetchAsync(string? directory = null, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        directory ??= DefaultDirectory;
        PrivateDirectory.Create(directory); // it sits in the artifact cache, whose directories must be writable by us alone
        string path = Path.Combine(directory, "trealla-0.17.10.wasm");
        if (File.Exists(path))
        {
            byte[] cached = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            if (Sha256Of(cached) == WasmSha256)
            {
                return path;
            }

            progress?.Report($"cached {path} does not match the pinned SHA-256; fetching again");
        }

        string work = Path.Combine(directory, $"fetch-{Environment.ProcessId}-{Guid.NewGuid():N}");
        PrivateDirectory.Create(work);
        try
        {
            progress?.Report($"npm pack {PackageSpec}");
            (int code, string output) = await ToolProcess.RunAsync("npm",
                ["pack", PackageSpec, "--pack-destination", work, "--silent", "--no-fund", "--no-audit"], work,
                elapsed => progress?.Report($"npm pack still running ({elapsed.TotalSeconds:F0} s)"), cancellationToken,
                "Install Node.js/npm (the fresh-machine image has it).").ConfigureAwait(false);
            string[] packages = Directory.GetFiles(work, "*.tgz");
            if (code != 0 || packages.Length != 1)
            {
                throw new GuestPackageException(
                    $"npm pack {PackageSpec} failed (exit {code}, {packages.Length} tarballs): {output.Trim()}");
            }

            byte[] wasm;
            await using (FileStream tgz = File.OpenRead(packages[0]))
            {
                wasm = ExtractWasm(tgz);
            }

            string temp = path + $".{Environment.ProcessId}.tmp";
            await File.WriteAllBytesAsync(temp, wasm, cancellationToken).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
            progress?.Report($"{path}: {wasm.Length:N0} bytes, SHA-256 verified");
            return path;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// Extracts the interpreter's wasm from the package tarball: the base64 literal in <c>package/trealla.js</c>
    /// whose bytes have the pinned SHA-256.
    /// </summary>
    /// <exception cref="GuestPackageException">Not a gzip tarball, no <c>trealla.js</c>, or no literal with the pinned hash.</exception>
    public static byte[] ExtractWasm(Stream packageTgz)
    {
        ArgumentNullException.ThrowIfNull(packageTgz);
        string? script = null;
        try
        {
            using var gzip = new GZipStream(packageTgz, CompressionMode.Decompress, leaveOpen: true);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.Name == "package/trealla.js" && entry.DataStream is { } data)
                {
                    using var reader = new StreamReader(data, Encoding.UTF8);
                    script = reader.ReadToEnd();
                    break;
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new GuestPackageException($"The {PackageSpec} package is not a readable .tgz: {e.Message}", e);
        }

        if (script is null)
        {
            throw new GuestPackageException($"The {PackageSpec} package has no package/trealla.js.");
        }

        // trealla.js embeds more than one module; the interpreter is the one with the pinned hash.
        var found = new List<string>();
        for (int start = script.IndexOf(WasmMagicBase64, StringComparison.Ordinal); start >= 0;
             start = script.IndexOf(WasmMagicBase64, start + 1, StringComparison.Ordinal))
        {
            int end = start;
            while (end < script.Length && (char.IsAsciiLetterOrDigit(script[end]) || script[end] is '+' or '/' or '='))
            {
                end++;
            }

            byte[] wasm;
            try
            {
                wasm = Convert.FromBase64String(script[start..end]);
            }
            catch (FormatException)
            {
                found.Add($"invalid base64 at char {start}");
                continue;
            }

            string hash = Sha256Of(wasm);
            if (hash == WasmSha256)
            {
                return wasm;
            }

            found.Add($"{wasm.Length:N0} B with SHA-256 {hash}");
            start = end - 1;
        }

        throw new GuestPackageException(found.Count == 0
            ? $"package/trealla.js of {PackageSpec} holds no base64 wasm literal (no '{WasmMagicBase64}')."
            : $"No wasm in package/trealla.js of {PackageSpec} has the pinned SHA-256 {WasmSha256}; found: {string.Join("; ", found)}. " +
              "The package was altered; nothing was cached.");
    }

    /// <summary>Checks <paramref name="wasm"/> against <see cref="WasmSha256"/>.</summary>
    /// <exception cref="GuestPackageException">The hash differs.</exception>
    public static void Verify(ReadOnlySpan<byte> wasm)
    {
        string actual = Sha256Of(wasm);
        if (actual != WasmSha256)
        {
            throw new GuestPackageException(
                $"The Trealla wasm ({wasm.Length:N0} bytes) has SHA-256 {actual}, but {WasmSha256} is pinned for {PackageSpec}. " +
                "The package or download was altered; nothing was cached.");
        }
    }

    private static string Sha256Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
