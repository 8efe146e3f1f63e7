using CowWasm.Cli;

return args switch
{
    ["compile", .. var rest] => CompileCommand.Run(rest),
    ["trealla-setup", .. var rest] => await PrologCommands.SetupAsync(rest).ConfigureAwait(false),
    ["prolog", .. var rest] => await PrologCommands.QueryAsync(rest).ConfigureAwait(false),
    ["call", .. var rest] => CallCommand.Run(rest),
    ["snapshot-info", .. var rest] => SnapshotInfoCommand.Run(rest),
    ["--help" or "-h" or "help", ..] => Usage.Print(Console.Out, 0),
    _ => Usage.Print(Console.Error, 2),
};
