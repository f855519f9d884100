import ArgumentParser

@main
struct GalleyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "galley",
        abstract: "Run and test Lambda-style functions locally.",
        subcommands: [Serve.self, Invoke.self, List.self, KV.self, Events.self]
    )
}
