import ArgumentParser

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

@main
struct GalleyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "galley",
        abstract: "Run and test Lambda-style functions locally.",
        subcommands: [
            Serve.self, Invoke.self, New.self, List.self, KV.self, Queue.self, DLQ.self, Events.self, Package.self,
            WorkerCommand.self,
        ]
    )

    /// Started as `bootstrap` (a Lambda custom runtime), the binary is a worker and nothing else.
    static func main() async {
        if CommandLine.arguments.first.map({ $0.split(separator: "/").last == "bootstrap" }) == true {
            await WorkerCommand.main([])
            return
        }
        await GalleyCommand.main(nil)
    }
}
