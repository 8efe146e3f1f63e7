using System.CommandLine;
using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>
/// The service's command line on System.CommandLine: <c>cowwasm serve</c> (the .NET tool) and <c>CowWasm.Server</c> (the
/// project's own executable) both use it. System.CommandLine parses the switches and writes the help; the values are
/// then read and checked by <see cref="ServerOptions.Parse"/>, the one place that knows their ranges, so code that builds
/// <see cref="ServerOptions"/> from strings and the command line report a bad value the same way.
/// </summary>
public static class ServeCommand
{
    /// <summary>The description shown by <c>--help</c>.</summary>
    public const string Description =
        "Serve a Prolog knowledge base over HTTP (JSON, NDJSON streams, the browser console at /) and, with --tcp-port, " +
        "JSON lines over TCP. Ctrl+C or SIGTERM shuts down gracefully. Exit codes: 0 stopped, 1 failed to start, 2 bad usage.";

    // Switches whose value may be left out (it then means true).
    private static readonly HashSet<string> s_flags = ["--save-on-shutdown", "--anonymous-reads", "--replication-purge"];

    private static readonly Dictionary<string, string> s_valueNames = new()
    {
        ["--port"] = "PORT", ["--tcp-port"] = "PORT", ["--snapshot"] = "FILE", ["--runtime"] = "wasmtime|native",
        ["--durability"] = "log|replicated|none", ["--data-dir"] = "DIR", ["--backend"] = "pool|locked",
        ["--isolation"] = "per-read|per-commit", ["--otlp-endpoint"] = "URL", ["--token-file"] = "FILE",
        ["--allowed-hosts"] = "NAMES", ["--serve-followers"] = "SOCKET", ["--follow"] = "SOCKET",
        ["--replicate-to"] = "URLS", ["--follow-nats"] = "URLS", ["--replication-name"] = "NAME",
    };

    /// <summary>Adds the service's options and action to <paramref name="command"/> (a <c>serve</c> verb or a root command).</summary>
    public static Command Configure(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var options = new List<Option<string>>();
        foreach ((string name, string help) in ServerOptions.Switches)
        {
            var option = new Option<string>(name)
            {
                Description = help,
                HelpName = s_flags.Contains(name) ? "true|false" : s_valueNames.GetValueOrDefault(name, name.EndsWith("-ms", StringComparison.Ordinal) ? "MS" : "N"),
                Arity = s_flags.Contains(name) ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne,
            };
            options.Add(option);
            command.Add(option);
        }

        command.SetAction(async (parsed, cancellationToken) =>
        {
            var args = new List<string>();
            foreach (Option<string> option in options)
            {
                if (parsed.GetResult(option) is { } result)
                {
                    args.Add(option.Name);
                    args.Add(result.Tokens.Count == 0 ? "true" : result.Tokens[0].Value);
                }
            }

            ServerOptions serverOptions;
            try
            {
                serverOptions = ServerOptions.Parse(args);
            }
            catch (ArgumentException e)
            {
                await parsed.InvocationConfiguration.Error.WriteLineAsync($"{parsed.RootCommandResult.Command.Name}: {e.Message} (--help lists the options)")
                    .ConfigureAwait(false);
                return 2;
            }

            return await RunAsync(serverOptions).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Loads Trealla on the chosen runtime, starts the service and runs it until Ctrl+C or SIGTERM.</summary>
    /// <returns>0 once it has stopped.</returns>
    public static async Task<int> RunAsync(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var module = await TreallaGuest.LoadAsync(options.Runtime, new Progress<string>(Console.Error.WriteLine)).ConfigureAwait(false);
        await using PrologServer server = await PrologServer.StartAsync(options, module).ConfigureAwait(false);
        await server.Completion.ConfigureAwait(false); // Ctrl+C / SIGTERM, handled by the host
        await server.StopAsync().ConfigureAwait(false);
        return 0;
    }
}
