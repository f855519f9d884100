import ArgumentParser
import Functions
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `galley worker`: the Lambda runtime for Galley's worker processes and for AWS Lambda.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve the handler named by _HANDLER over the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.",
        shouldDisplay: false
    )

    func run() async throws {
        let status = await Worker(catalog: catalog, environment: ProcessInfo.processInfo.environment).run()
        if status != 0 { throw ExitCode(status) }
    }
}
