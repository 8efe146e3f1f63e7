using System.CommandLine;
using System.CommandLine.Invocation;

namespace CowWasm.Server;

/// <summary>
/// Runs a System.CommandLine root command with the exit codes our commands document: 0 done, 1 failed (the error is
/// printed, one line, without a stack trace unless it is a bug), 2 bad usage (every parse error is printed, naming the
/// argument, with a pointer to <c>--help</c>).
/// </summary>
public static class CommandLineHost
{
    /// <summary>Exit code of a command that finished.</summary>
    public const int Done = 0;

    /// <summary>Exit code of a command that failed; the error is on stderr.</summary>
    public const int Failed = 1;

    /// <summary>Exit code of a command line that does not parse, or a value out of range.</summary>
    public const int BadUsage = 2;

    /// <summary>Parses <paramref name="args"/> against <paramref name="root"/> and invokes the chosen command.</summary>
    public static async Task<int> InvokeAsync(RootCommand root, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(root);
        ParseResult parsed = root.Parse(args);
        if (parsed.Action is ParseErrorAction)
        {
            string name = root.Name;
            foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
            {
                await Console.Error.WriteLineAsync($"{name}: {error.Message}").ConfigureAwait(false);
            }

            string verb = parsed.CommandResult.Command == root ? name : $"{name} {parsed.CommandResult.Command.Name}";
            await Console.Error.WriteLineAsync($"Run '{verb} --help' for usage.").ConfigureAwait(false);
            return BadUsage;
        }

        try
        {
            // The service handles SIGTERM/SIGINT itself (a graceful shutdown), so System.CommandLine registers no handlers.
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null })
                .ConfigureAwait(false);
        }
        catch (Exception e) when (IsUserFacing(e))
        {
            await Console.Error.WriteLineAsync($"{root.Name}: {Describe(e)}").ConfigureAwait(false);
            return Failed;
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"{root.Name}: unexpected error (a bug; please report it): {e}").ConfigureAwait(false);
            return Failed;
        }
    }

    // Errors about the input, the files or the guest: the message says what is wrong; a stack trace would not help.
    private static bool IsUserFacing(Exception e) => e is IOException or UnauthorizedAccessException or InvalidDataException
        or ArgumentException or FormatException or OverflowException or InvalidOperationException or OperationCanceledException
        or NotSupportedException or Runtime.WasmTrapException or Runtime.GuestExitException or Prolog.PrologException
        or Pool.SnapshotFormatException or Pool.CommitFormatException or Pool.CommitHistoryException or Prolog.GuestPackageException
        or Memory.Images.PageImageFormatException or System.ComponentModel.Win32Exception;

    private static string Describe(Exception e) =>
        e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal)
            ? $"{e.Message} ({inner.Message})"
            : e.Message;
}
