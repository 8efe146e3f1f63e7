namespace CowWasm.Memory.Images;

/// <summary>What a page-image file's header says (everything but the pages).</summary>
/// <param name="FormatVersion">The file format version.</param>
/// <param name="PageSize">Bytes per page (4096).</param>
/// <param name="PageCount">Pages in the image.</param>
/// <param name="DataHash">SHA-256 of the page data (32 bytes), checked by <see cref="PageImage.VerifyData"/>.</param>
/// <param name="Identity">The owner's bytes, opaque to the engine (a pool stores its module hash, memory length and globals here).</param>
/// <param name="DataOffset">Where page 0 starts in the file (a page multiple).</param>
public sealed record PageImageHeader(int FormatVersion, int PageSize, long PageCount, byte[] DataHash, byte[] Identity, long DataOffset);
