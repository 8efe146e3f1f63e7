using CowWasm.Memory;
using CowWasm.Memory.Images;

namespace CowWasm.Cli;

/// <summary><c>snapshot-info FILE</c>: a snapshot's page-image header (pages, data hash, the owner's identity bytes), checked.</summary>
internal static class SnapshotInfoCommand
{
    public static int Run(string[] args)
    {
        if (args.Length != 1)
        {
            return Usage.Error("snapshot-info takes one file.");
        }

        using PageImage image = PageImageFile.Open(args[0]);
        PageImageHeader header = image.Header;
        Console.WriteLine($"{image.Path}: page image format {header.FormatVersion}, {header.PageCount:N0} pages of {header.PageSize} B " +
                          $"({Pages.ToBytes(header.PageCount):N0} B) at offset {header.DataOffset}");
        Console.WriteLine($"  data SHA-256 {Convert.ToHexStringLower(header.DataHash)}");
        Console.WriteLine($"  identity {header.Identity.Length} B: {Convert.ToHexStringLower(header.Identity.AsSpan(0, Math.Min(64, header.Identity.Length)))}" +
                          (header.Identity.Length > 64 ? "…" : ""));
        return 0;
    }
}
