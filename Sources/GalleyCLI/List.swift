import ArgumentParser
import GalleyHost

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the deployed functions and their configuration."
    )

    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        try await reportingFailures {
            let deployment = try configOptions.loadDeployment()
            StandardStreams.writeLine(Array(FunctionTable(deployment).render().utf8))
        }
    }
}
