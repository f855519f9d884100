import ArgumentParser

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The `galley` command line, shared by the `galley` and `galley-full` executables.
public struct GalleyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "galley",
        abstract: "Run and test Lambda-style functions locally.",
        subcommands: [
            Serve.self, Invoke.self, New.self, List.self, Logs.self, KV.self, Queue.self, DLQ.self, Events.self,
            Package.self,
            WorkerCommand.self,
        ]
    )

    public init() {}

    /// Runs the command line. Started as `bootstrap` (a Lambda custom runtime), the binary is a
    /// worker and nothing else.
    public static func run() async {
        if CommandLine.arguments.first.map({ $0.split(separator: "/").last == "bootstrap" }) == true {
            await WorkerCommand.main([])
            return
        }
        // The commands a function's every run starts (`galley invoke`, and each worker) parse as
        // their own root, without building the whole tree of commands (0.8 ms of every invoke);
        // help and every mistake take the full path, and its messages.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, ["invoke", "worker"].contains(first),
            !arguments.contains(where: { ["-h", "--help", "help", "--version"].contains($0) })
        {
            let rest = Array(arguments.dropFirst())
            var command: (any AsyncParsableCommand)?
            do {
                command =
                    try (first == "invoke" ? Invoke.parseAsRoot(rest) : WorkerCommand.parseAsRoot(rest))
                    as? any AsyncParsableCommand
            } catch {
                command = nil
            }
            if var command {
                do {
                    try await command.run()
                } catch {
                    GalleyCommand.exit(withError: error)
                }
                return
            }
        }
        await GalleyCommand.main(nil)
    }
}
