using System.Security.Cryptography;
using System.Text;

namespace CowWasm.Server;

/// <summary>
/// The bearer token clients must present (<see cref="ServerOptions.Token"/>): given in code, in <c>COWWASM_TOKEN</c>, in
/// <see cref="ServerOptions.TokenFile"/>, or kept in <c>token</c> in the data directory and generated there at first
/// start. Compared in constant time. A hand-rolled check, on purpose: ASP.NET Core's bearer handlers validate JWTs from
/// an issuer, and a service on loopback with one shared secret has neither.
/// </summary>
internal sealed class AccessToken
{
    /// <summary>The environment variable that may hold the token.</summary>
    public const string EnvironmentVariable = "COWWASM_TOKEN";

    private readonly byte[] _expected;

    private AccessToken(string token, string source, bool generated)
    {
        _expected = Encoding.UTF8.GetBytes(token);
        Source = source;
        Generated = generated;
    }

    /// <summary>Where the token came from (for the start-up log; never the token itself).</summary>
    public string Source { get; }

    /// <summary>The token was created at this start (the start-up log prints it once, with the file that keeps it).</summary>
    public bool Generated { get; }

    /// <summary>The token, for the start-up line of a first start only.</summary>
    public string Value => Encoding.UTF8.GetString(_expected);

    /// <summary>Finds (or creates) the token the options name.</summary>
    /// <exception cref="ArgumentException">The token file is missing, empty, or readable by other users.</exception>
    public static AccessToken Resolve(ServerOptions options)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The service runs on Linux only."); // also satisfies the platform analyzer
        }

        if (options.Token is { } given)
        {
            return new AccessToken(given, "ServerOptions.Token", generated: false);
        }

        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment)
        {
            if (fromEnvironment.Length < 16)
            {
                throw new ArgumentException($"{EnvironmentVariable} must hold at least 16 characters.");
            }

            return new AccessToken(fromEnvironment, $"${EnvironmentVariable}", generated: false);
        }

        if (options.TokenFile is { } file)
        {
            return new AccessToken(Read(file, "--token-file"), file, generated: false);
        }

        string kept = Path.Combine(options.ResolvedDataDirectory, "token");
        if (File.Exists(kept))
        {
            return new AccessToken(Read(kept, "the data directory's token file"), kept, generated: false);
        }

        Directory.CreateDirectory(options.ResolvedDataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        try
        {
            using var stream = new FileStream(kept, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            stream.Write(Encoding.UTF8.GetBytes(token + "\n"));
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(kept))
        {
            return new AccessToken(Read(kept, "the data directory's token file"), kept, generated: false); // another start made it first
        }

        return new AccessToken(token, kept, generated: true);
    }

    /// <summary>Whether an <c>Authorization</c> header value is <c>Bearer</c> and this token.</summary>
    public bool Matches(string? authorization)
    {
        const string scheme = "Bearer ";
        return authorization is not null && authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) &&
               MatchesToken(authorization.AsSpan(scheme.Length).Trim());
    }

    /// <summary>Whether <paramref name="token"/> is this token (constant time in its length).</summary>
    public bool MatchesToken(ReadOnlySpan<char> token)
    {
        Span<byte> bytes = token.Length <= 256 ? stackalloc byte[Encoding.UTF8.GetMaxByteCount(token.Length)] : new byte[Encoding.UTF8.GetMaxByteCount(token.Length)];
        int length = Encoding.UTF8.GetBytes(token, bytes);
        return CryptographicOperations.FixedTimeEquals(bytes[..length], _expected);
    }

    private static string Read(string path, string what)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The service runs on Linux only.");
        }

        if (!File.Exists(path))
        {
            throw new ArgumentException($"{what} {path} does not exist.");
        }

        UnixFileMode mode = File.GetUnixFileMode(path);
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0)
        {
            throw new ArgumentException($"{what} {path} is readable by other users (mode {Convert.ToString((int)mode, 8)}); chmod 600 it.");
        }

        string token = File.ReadLines(path).FirstOrDefault()?.Trim() ?? "";
        return token.Length >= 16 ? token : throw new ArgumentException($"{what} {path} must hold a token of at least 16 characters on its first line.");
    }
}
