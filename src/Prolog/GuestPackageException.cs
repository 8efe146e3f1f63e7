namespace CowWasm.Prolog;

/// <summary>Getting the guest failed: the download, the package's layout, or the pinned hash.</summary>
public sealed class GuestPackageException(string message, Exception? inner = null) : Exception(message, inner);
