import ArgumentParser
import Functions
import GalleyHost

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve every function over HTTP: the Lambda Invoke API and the functions' routes.",
        discussion: """
            SIGTERM or SIGINT stops accepting, finishes running invocations, then exits 0. SIGHUP re-reads the \
            configuration: a valid file takes effect for new invocations, an invalid one is refused and logged.
            """
    )

    @Option(name: .long, help: "The address to listen on (default: server.host in runtime.json, else 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "The port (default: server.port in runtime.json, else 9000; 0 picks a free one).")
    var port: Int?

    @Option(name: .long, help: "Listen on this Unix domain socket instead of TCP (for an nginx upstream).")
    var socket: String?

    @Option(
        name: .long,
        help: "The socket's permission bits in octal, e.g. 660 for its owner and group (default: the umask's)."
    )
    var socketMode: String?

    @Option(name: .long, help: .hidden)
    var eventLoops: Int?

    @Flag(
        name: .long,
        help: """
            Rebuild on changes to Sources/, Functions/, Package.swift (swift build) and serve the new build with no \
            request lost; a command function restarts when its directory changes; runtime.json reloads.
            """
    )
    var watch = false

    /// One generation of a `--watch` host (the watcher holds the lock and the public address).
    @Flag(name: .long, help: .hidden)
    var supervised = false

    @Flag(name: .long, help: .hidden)
    var noRecovery = false

    @Option(name: .long, help: .hidden)
    var build: String?

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var environmentOverrides: EnvironmentOverrideOptions
    @OptionGroup var logOptions: LogOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if let eventLoops, eventLoops < 1 { throw ValidationError("--event-loops must be at least 1") }
        if let socketMode {
            guard socket != nil else { throw ValidationError("--socket-mode goes with --socket") }
            guard socketMode.wholeMatch(of: /0?[0-7]{3}/) != nil else {
                throw ValidationError("--socket-mode must be octal permission bits such as 660, found '\(socketMode)'")
            }
        }
    }

    func run() async throws {
        try await reportingFailures {
            var options = HostOptions(configurationFile: configOptions.config)
            options.host = host
            options.port = port
            options.socket = socket
            options.socketMode = socketMode.flatMap { UInt32($0, radix: 8) }
            options.eventLoops = eventLoops
            options.logFormat = logOptions.logFormat.format
            options.logLevel = logOptions.logLevel.level
            options.supervised = supervised
            options.recoversQueue = !noRecovery
            options.build = build
            try environmentOverrides.install()
            options.environmentOverrides = environmentOverrides.envVars
            options.parameterOverrides = configOptions.parameterOverrides
            if watch {
                let supervisor: WatchSupervisor
                do throws(ConfigurationError) {
                    supervisor = try WatchSupervisor(options: options)
                } catch {
                    throw Failure(error.description)
                }
                do {
                    try await supervisor.run()
                } catch let error as ListenError {
                    throw Failure(error.description)
                }
                return
            }
            let host: FunctionHost
            do throws(ConfigurationError) {
                host = try FunctionHost(options: options, catalog: catalog)
            } catch {
                throw Failure(error.description)
            }
            do {
                try await host.run()
            } catch let error as ListenError {
                throw Failure(error.description)
            }
        }
    }
}
