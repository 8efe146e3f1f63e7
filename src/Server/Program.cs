using CowWasm.Prolog;
using CowWasm.Server;

// dotnet run --project src/Server -- --port 8080 [--tcp-port 8081] [--snapshot kb.snap] [--save-on-shutdown true] …
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine("usage: CowWasm.Server [options]   (Ctrl+C or SIGTERM: graceful shutdown)");
    foreach ((string name, string help) in ServerOptions.Switches)
    {
        Console.WriteLine($"  {name,-22} {help}");
    }

    return 0;
}

ServerOptions options;
try
{
    options = ServerOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"CowWasm.Server: {e.Message} (--help lists the options)");
    return 2;
}

using var module = await TreallaGuest.LoadAsync(options.Runtime, new Progress<string>(Console.Error.WriteLine));
await using PrologServer server = await PrologServer.StartAsync(options, module);
await server.Completion; // Ctrl+C / SIGTERM
await server.StopAsync();
return 0;
