import ArgumentParser
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `galley package FUNCTION`: a zip that AWS Lambda runs as a `provided.al2023` custom runtime.
struct Package: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Build a Lambda-ready zip (bootstrap) of a Swift function for the provided.al2023 runtime.",
        discussion: """
            Builds galley in release mode with the static Swift standard library (swift build -c release \
            --static-swift-stdlib), copies it into the zip as `bootstrap` (which runs `galley worker`), and prints \
            the aws lambda create-function command that deploys it. Needs the zip program.
            """
    )

    @Argument(help: "The function's name in runtime.json.")
    var function: String

    @Option(name: .long, help: "Where to write the zip (default: .build/lambda/FUNCTION.zip).")
    var output: String?

    @Option(name: .long, help: "Package this galley binary instead of building one.")
    var binary: String?

    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        try await reportingFailures {
            let deployment = try configOptions.loadDeployment()
            guard let deployed = deployment.functions[function] else {
                let known = deployment.functions.keys.sorted().joined(separator: ", ")
                throw Failure(
                    "no function named '\(function)' in \(configOptions.config); deployed functions: \(known)"
                )
            }
            let configuration = deployed.configuration
            guard configuration.command == nil else {
                throw Failure("'\(function)' runs a command, not a Swift handler: package it with its own tools")
            }
            let binary = try self.binary ?? buildRelease()
            let zip = URL(filePath: output ?? ".build/lambda/\(function).zip").standardizedFileURL
            let staging = zip.deletingLastPathComponent().appending(path: ".\(function)-bootstrap")
            let fileManager = FileManager.default
            try? fileManager.removeItem(at: staging)
            try? fileManager.removeItem(at: zip)
            do {
                try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
                try fileManager.copyItem(at: URL(filePath: binary), to: staging.appending(path: "bootstrap"))
                try fileManager.setAttributes(
                    [.posixPermissions: 0o755],
                    ofItemAtPath: staging.appending(path: "bootstrap").path
                )
            } catch {
                throw Failure("cannot copy \(binary) into \(staging.path): \(error)")
            }
            defer { try? fileManager.removeItem(at: staging) }
            let status = try run(["zip", "-q", "-X", "-j", zip.path, staging.appending(path: "bootstrap").path])
            guard status == 0 else { throw Failure("zip failed with status \(status) (apt-get install -y zip)") }
            let variables = configuration.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            StandardStreams.writeLine(Array(zip.path.utf8))
            StandardStreams.writeError(
                """
                galley: deploy it with:
                  aws lambda create-function --function-name \(function) --runtime provided.al2023 \
                --handler \(configuration.handler) --zip-file fileb://\(zip.path) \
                --timeout \(Int(configuration.timeout.rounded(.up))) --memory-size \(configuration.memory) \
                --role arn:aws:iam::ACCOUNT:role/ROLE\
                \(variables.isEmpty ? "" : " --environment 'Variables={\(variables.joined(separator: ","))}'")
                """
            )
        }
    }

    /// `swift build -c release --static-swift-stdlib --product galley`; returns the binary's path.
    private func buildRelease() throws -> String {
        let arguments = ["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "galley"]
        StandardStreams.writeError("galley: \(arguments.joined(separator: " "))")
        let status = try run(arguments)
        guard status == 0 else { throw Failure("the release build failed (status \(status))") }
        return ".build/release/galley"
    }

    /// Runs a program found on PATH, its stdout sent to stderr; returns its exit status.
    private func run(_ arguments: [String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard started == 0 else {
            throw Failure("cannot run \(arguments[0]): \(String(cString: strerror(started)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
