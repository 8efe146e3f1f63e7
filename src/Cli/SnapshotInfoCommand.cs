using System.CommandLine;
using CowWasm.Memory;
using CowWasm.Memory.Images;

namespace CowWasm.Cli;

/// <summary><c>snapshot-info FILE</c>: a snapshot's page-image header (pages, data hash, the owner's identity bytes), checked.</summary>
internal static class SnapshotInfoCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "a pool snapshot (PrologPool.SaveSnapshotAsync, POST /snapshot)" };
        file.AcceptExistingOnly();
        var command = new Command("snapshot-info", "Print a pool snapshot's header, checked, without mapping its pages.") { file };
        command.SetAction(parsed => Run(parsed.GetRequiredValue(file).FullName));
        return command;
    }

    private static int Run(string path)
    {
        using PageImage image = PageImageFile.Open(path);
        PageImageHeader header = image.Header;
        Console.WriteLine($"{image.Path}: page image format {header.FormatVersion}, {header.PageCount:N0} pages of {header.PageSize} B " +
                          $"({Pages.ToBytes(header.PageCount):N0} B) at offset {header.DataOffset}");
        Console.WriteLine($"  data SHA-256 {Convert.ToHexStringLower(header.DataHash)}");
        Console.WriteLine($"  identity {header.Identity.Length} B: {Convert.ToHexStringLower(header.Identity.AsSpan(0, Math.Min(64, header.Identity.Length)))}" +
                          (header.Identity.Length > 64 ? "…" : ""));
        return 0;
    }
}
