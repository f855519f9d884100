import ArgumentParser
import Functions
import GalleyHost
import Logging
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `--config` (or `--template`), shared by every command that reads runtime.json.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The runtime configuration file (an AWS SAM template when it ends in .yaml or .yml).")
    var config = "runtime.json"

    @Option(name: .long, help: "An AWS SAM template to serve instead of runtime.json.")
    var template: String?

    @Option(
        name: .long,
        help:
            "Values for the template's Parameters: 'Name=Value Other=Value' (or SAM's ParameterKey=…,ParameterValue=…)."
    )
    var parameterOverrides: String?

    /// Configurations read by this command, by path: read once, whoever asks.
    private static let loaded = Mutex<[String: RuntimeConfiguration]>([:])

    /// Hands the command to `galley-full` before it reads any input, when the store is in
    /// PostgreSQL or the configuration is a SAM template. A configuration that does not load is the
    /// command's to report, later, as always.
    mutating func validate() throws {
        if let template {
            guard config == "runtime.json" else { throw ValidationError("give --template or --config, not both") }
            config = template
        }
        if let parameterOverrides {
            guard SAMTemplate.isTemplate(config) else {
                throw ValidationError("--parameter-overrides applies to a SAM template (--template FILE)")
            }
            do {
                let overrides = try SAMTemplate.parseOverrides(parameterOverrides)
                SAMTemplate.parameterOverrides.withLock { $0 = overrides }
            } catch {
                throw ValidationError(error.message)
            }
        }
        // A hand-off that cannot happen is the command's one-line error, exit 2, as any other.
        do {
            try FullHandOff.ensure(readable: config)
            guard let configuration = try? RuntimeConfiguration.load(from: config) else { return }
            try keep(configuration)
        } catch let failure as Failure {
            throw failure.reported()
        }
    }

    /// The validated configuration, or a one-line error and exit 2.
    func loadConfiguration() throws -> RuntimeConfiguration {
        if let loaded = Self.loaded.withLock({ $0[config] }) { return loaded }
        let configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration.load(from: config)
        } catch {
            throw Failure(error.description)
        }
        try keep(configuration)
        return configuration
    }

    /// Remembers `configuration`, once this binary is the one that can run it, and says once what
    /// of a template it could not map.
    private func keep(_ configuration: RuntimeConfiguration) throws {
        try FullHandOff.ensure(configuration)
        let isNew = Self.loaded.withLock { loaded in
            defer { loaded[config] = configuration }
            return loaded[config] == nil
        }
        if isNew {
            for note in configuration.notes { StandardStreams.writeError("galley: \(note)") }
        }
    }

    /// The validated configuration bound to the catalog, or a one-line error and exit 2.
    func loadDeployment() throws -> Deployment {
        do {
            return try Deployment(configuration: try loadConfiguration(), catalog: catalog, file: config)
        } catch let error as ConfigurationError {
            throw Failure(error.description)
        }
    }

    /// The dispatcher of `galley invoke`: the same environments as `galley serve`, in this process
    /// or in `galley worker` children of it.
    func makeDispatcher(_ logOptions: LogOptions) throws -> Dispatcher {
        let deployment = try loadDeployment()
        return Dispatcher(
            deployment: deployment,
            logWriter: .standardError(format: logOptions.logFormat.format),
            logLevel: logOptions.logLevel.level,
            stores: StoreAccess.provider(storeOpener(deployment.configuration)),
            configurationFolder: URL(filePath: config).deletingLastPathComponent().path
        )
    }

    /// The store the configuration names, opened on first use.
    func storeOpener(_ configuration: RuntimeConfiguration) -> StoreOpener {
        StoreOpener.configured(configuration, configurationFile: config)
    }
}

/// `--log-format` and `--log-level`.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "text (Lambda's classic lines) or json.")
    var logFormat: LogFormatArgument = .init(.text)

    @Option(name: .long, help: "The lowest level of handler log lines shown: trace, debug, info, warning, error.")
    var logLevel: LogLevelArgument = .init(.info)
}

struct LogFormatArgument: ExpressibleByArgument {
    var format: LogWriter.Format
    init(_ format: LogWriter.Format) { self.format = format }
    init?(argument: String) {
        guard let format = LogWriter.Format(argument) else { return nil }
        self.format = format
    }
    static var allValueStrings: [String] { ["text", "json"] }
    var defaultValueDescription: String { format == .json ? "json" : "text" }
}

struct LogLevelArgument: ExpressibleByArgument {
    var level: Logger.Level
    init(_ level: Logger.Level) { self.level = level }
    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }
    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    var defaultValueDescription: String { level.rawValue }
}

/// A user-facing failure: printed as `galley: <message>` on stderr, exit code 2.
struct Failure: Error, CustomStringConvertible {
    var message: String
    var exitCode: Int32 = 2
    init(_ message: String, exitCode: Int32 = 2) {
        self.message = message
        self.exitCode = exitCode
    }
    var description: String { message }

    /// Prints `galley: <message>` on stderr; returns the exit code to throw.
    func reported() -> ExitCode {
        StandardStreams.writeError("galley: \(message)")
        return ExitCode(exitCode)
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning a ``Failure`` into one line on stderr and its exit code.
    func reportingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as Failure {
            throw failure.reported()
        }
    }
}

/// A number of seconds as people write it: decimal digits with an optional fraction (`90`, `1.5`).
/// Swift's `Double("…")` would also take `0x10`, `1e3`, `inf` and `nan`.
struct DecimalSeconds: ExpressibleByArgument {
    var value: Double

    init?(argument: String) {
        guard argument.wholeMatch(of: /[0-9]+(\.[0-9]+)?/) != nil, let value = Double(argument) else { return nil }
        self.value = value
    }
}

/// `--env-vars FILE` (AWS SAM's format), on `serve` and `invoke`.
struct EnvironmentOverrideOptions: ParsableArguments {
    @Option(
        name: .customLong("env-vars"),
        help: #"A JSON file of environment variables for this run: {"Function": {"VAR": "value"}, "Parameters": {…}}."#
    )
    var envVars: String?

    /// Reads the file and makes it apply to every deployment this process builds.
    func install() throws {
        guard let envVars else { return }
        do {
            let overrides = try EnvironmentOverrides(file: envVars)
            EnvironmentOverrides.current.withLock { $0 = overrides }
        } catch {
            throw Failure(error.description)
        }
    }
}
