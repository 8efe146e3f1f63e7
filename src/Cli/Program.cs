using System.CommandLine;
using CowWasm.Cli;
using CowWasm.Server;

var root = new RootCommand(
    "cowwasm: copy-on-write snapshot pools of WebAssembly guests, and the Trealla Prolog service built on them. " +
    "Exit codes: 0 done, 1 failed (the error is printed), 2 bad usage.")
{
    ServeCommand.Configure(new Command("serve", ServeCommand.Description)),
    PrologCommands.CreateQuery(),
    CallCommand.Create(),
    SnapshotInfoCommand.Create(),
    CompileCommand.Create(),
    PrologCommands.CreateSetup(),
};
return await CommandLineHost.InvokeAsync(root, args);
