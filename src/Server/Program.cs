using System.CommandLine;
using CowWasm.Server;

// dotnet run --project src/Server -- --port 8080 [--tcp-port 8081] [--snapshot kb.snap] [--save-on-shutdown true] …
// (the same options as `cowwasm serve`)
return await CommandLineHost.InvokeAsync(
    (RootCommand)ServeCommand.Configure(new RootCommand(ServeCommand.Description)), args);
