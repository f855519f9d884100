import Galley
import Logging
import NIOCore
import NIOPosix

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

/// Makes a function's environments: inline in the host, or a worker process per environment.
public struct EnvironmentLauncher: Sendable {
    /// The init phase ends with an error after 10 s, as in Lambda.
    static let initTimeout: Duration = .seconds(10)

    /// The `galley` binary whose hidden `worker` command runs Swift handlers in a process.
    public var workerExecutable: String
    /// The folder of runtime.json: `directory` and `storage.path` are relative to it.
    public var configurationFolder: String
    var writer: LogWriter
    /// Where init-phase and between-invocation lines are published too.
    var events: InvocationEvents?
    var logLevel: Logger.Level
    var stores: @Sendable (Deployment.Function) -> any StoreProvider
    private var sharedGroup: (any EventLoopGroup)?
    /// The given group, or NIO's shared one, whose threads start at first use (a one-shot invoke
    /// that runs in-process never starts them).
    var eventLoopGroup: any EventLoopGroup { sharedGroup ?? MultiThreadedEventLoopGroup.singleton }

    init(
        workerExecutable: String?,
        configurationFolder: String,
        writer: LogWriter,
        logLevel: Logger.Level,
        stores: @escaping @Sendable (Deployment.Function) -> any StoreProvider,
        eventLoopGroup: (any EventLoopGroup)?
    ) {
        self.sharedGroup = eventLoopGroup
        // The binary this host started from, even once a rebuild has replaced the file on disk:
        // a worker never runs code the host was not started with (until a restart says so).
        self.workerExecutable = workerExecutable ?? "/proc/\(getpid())/exe"
        self.configurationFolder = configurationFolder
        self.writer = writer
        self.logLevel = logLevel
        self.stores = stores
    }

    /// The running binary's own path.
    public static let currentExecutable: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// Runs the init phase of a new environment for `function`.
    /// `paths` are what its workers may not see of the application.
    func start(
        _ function: Deployment.Function,
        hiding paths: PrivatePaths
    ) async throws(EnvironmentFailure) -> any ExecutionEnvironment {
        let deadline = ContinuousClock.now + Self.initTimeout
        switch function.configuration.isolation {
        case .inline:
            guard let entry = function.entry else {
                throw EnvironmentFailure(
                    object: ErrorObject(
                        errorType: "Runtime.InvalidEntrypoint",
                        errorMessage: "no handler to run inline"
                    )
                )
            }
            return try await InlineEnvironment.start(
                function,
                entry: entry,
                stores: stores(function),
                writer: writer,
                events: events,
                logLevel: logLevel,
                deadline: deadline
            )
        default:
            var launch = launch(function)
            launch.sandbox = Sandbox.shared.plan(for: function.name, launch: launch, paths: paths)
            return try await ProcessEnvironment.start(
                function,
                launch: launch,
                stores: stores(function),
                writer: writer,
                events: events,
                group: eventLoopGroup,
                deadline: deadline
            )
        }
    }

    /// Where the worker binary lives on disk, for `LAMBDA_RUNTIME_DIR`.
    var runtimeExecutable: String {
        workerExecutable.hasPrefix("/proc/") ? Self.currentExecutable : workerExecutable
    }

    /// The command line, folder and environment variables of `function`'s worker processes.
    func launch(_ function: Deployment.Function) -> WorkerLaunch {
        let configuration = function.configuration
        let directory = configuration.directory.map { folder in
            folder.hasPrefix("/") ? folder : URL(filePath: configurationFolder).appending(path: folder).path
        }
        let arguments = configuration.command ?? [workerExecutable, "worker"]
        let handler = configuration.command == nil ? configuration.handler : (configuration.command?.last ?? "")
        var environment: [String: String] = [:]
        let inherited = ProcessInfo.processInfo.environment
        for name in WorkerLaunch.inherited { environment[name] = inherited[name] }
        // A crash report takes half a second of the worker's life; opt in with SWIFT_BACKTRACE=enable=yes.
        environment["SWIFT_BACKTRACE"] = inherited["SWIFT_BACKTRACE"] ?? "enable=no"
        environment.merge([
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": String(configuration.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": RuntimeConfiguration.format(configuration.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/\(function.name)",
            "AWS_LAMBDA_LOG_STREAM_NAME": WorkerLaunch.logStreamName(),
            "AWS_LAMBDA_LOG_FORMAT": writer.format == .json ? "JSON" : "Text",
            "AWS_LAMBDA_LOG_LEVEL": InvocationLogHandler.levelName(logLevel),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": ARN.region,
            "AWS_DEFAULT_REGION": ARN.region,
            "LAMBDA_TASK_ROOT": directory ?? configurationFolder,
            "LAMBDA_RUNTIME_DIR": URL(filePath: runtimeExecutable).deletingLastPathComponent().path,
            "TZ": "UTC",
            "LANG": "en_US.UTF-8",
            WorkerLaunch.environmentKeys: configuration.environment.keys.sorted().joined(separator: ","),
        ]) { _, new in new }
        environment.merge(configuration.environment) { _, own in own }
        return WorkerLaunch(
            arguments: arguments,
            directory: directory,
            environment: environment,
            usesChannel: configuration.command == nil
        )
    }
}

/// How a worker process is started.
struct WorkerLaunch: Sendable {
    var arguments: [String]
    var directory: String?
    var environment: [String: String]
    /// `galley worker` talks to the host over an inherited socket pair; a `command` over HTTP.
    var usesChannel: Bool
    /// Its identity and view of the files, or `nil` to start it as the host.
    var sandbox: Sandbox.Plan? = nil

    /// Names the descriptor of a `galley worker`'s channel to the host.
    static let channelVariable = "GALLEY_RUNTIME_CHANNEL"

    /// The only host variables a worker keeps, so that interpreters resolve as in a shell. Nothing
    /// else of the host's environment reaches a function (no credentials: give a function its own
    /// in runtime.json's `environment`).
    static let inherited = ["PATH", "HOME"]
    /// Galley's own variables for `galley worker`: which `environment` names are the function's,
    /// and the store it may use.
    static let environmentKeys = "GALLEY_ENVIRONMENT_KEYS"

    /// `2024/01/15/[$LATEST]<32 hex>`, as Lambda names log streams.
    static func logStreamName() -> String {
        let date = Timestamp.now().prefix(10).replacing("-", with: "/")
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined()
        return "\(date)/[$LATEST]\(hex)"
    }
}
