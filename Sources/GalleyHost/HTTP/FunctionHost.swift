import Galley
import GalleyStore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How `galley serve` runs; `nil` fields come from runtime.json.
public struct HostOptions: Sendable {
    public var configurationFile: String
    public var host: String?
    public var port: Int?
    /// A Unix domain socket to listen on instead of TCP (for nginx upstreams).
    public var socket: String?
    /// The permission bits the socket gets once it exists, e.g. `0o660` so that nginx's workers in
    /// the socket's group can connect; `nil` leaves what the umask gave (usually 0755: the owner only).
    public var socketMode: UInt32?
    public var logFormat: LogWriter.Format = .text
    public var logLevel: Logger.Level = .info
    /// Event-loop threads; default one per core.
    public var eventLoops: Int?
    /// A connection that sends nothing for this long is closed. Default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// The `galley` binary whose `worker` command runs Swift handlers in processes; default: this one.
    public var workerExecutable: String?
    /// The clock of the async queue's due times and schedules; tests move a manual one.
    public var queueClock: any QueueClock = SystemQueueClock()
    /// Run by `serve --watch` as one generation of its host: the watcher holds the storage folder's
    /// lock and the public address; this host serves on a private socket.
    public var supervised = false
    /// The `--env-vars` file, handed on to the builds of `serve --watch`.
    public var environmentOverrides: String?
    /// `--parameter-overrides` of a SAM template, passed on to the builds of `--watch`.
    public var parameterOverrides: String?
    /// Whether events a crashed host was delivering are delivered again at start. A generation
    /// started while the previous one still delivers must not take its events.
    public var recoversQueue = true
    /// Which build of `serve --watch` this host runs, for the log and `/_galley/functions`.
    public var build: String?

    public init(configurationFile: String) {
        self.configurationFile = configurationFile
    }
}

/// The `galley serve` host: one Hummingbird server and its services in one `ServiceGroup`, so that
/// SIGTERM and SIGINT stop accepting, finish running invocations and queued events, then return.
public struct FunctionHost: Sendable {
    /// The `Server` header of every answer.
    static let serverName = "Galley"

    public let options: HostOptions
    public let dispatcher: Dispatcher
    public let responder: HostResponder
    let opener: StoreOpener
    let events: EventQueue
    let state: HostState
    let logger: Logger
    let catalog: Catalog
    /// The HTTP server's event loops, which also read the worker channels.
    let eventLoopGroup: any EventLoopGroup
    /// This host's hold on its storage folder (its watcher's, under `serve --watch`).
    let storageLock: StorageLock?

    /// Loads and checks the configuration; nothing listens until ``run(onListening:)``.
    public init(options: HostOptions, catalog: Catalog) throws(ConfigurationError) {
        let file = options.configurationFile
        let configuration = try RuntimeConfiguration.load(from: options.configurationFile)
        let deployment = try Deployment(configuration: configuration, catalog: catalog, file: options.configurationFile)
        let writer = LogWriter.standardError(format: options.logFormat)
        let level = options.logLevel
        var logger = Logger(label: "galley") { _ in
            InvocationLogHandler(log: InvocationLog(writer: writer, requestID: nil, capture: false), logLevel: level)
        }
        logger.logLevel = level
        let opener = StoreOpener.configured(configuration, configurationFile: options.configurationFile)
        let group: any EventLoopGroup =
            options.eventLoops.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
            ?? MultiThreadedEventLoopGroup.singleton
        let counted = configuration.server.metrics ? HostMetrics() : nil
        let dispatcher = Dispatcher(
            deployment: deployment,
            logWriter: writer,
            logLevel: level,
            stores: StoreAccess.provider(opener, metrics: counted),
            workerExecutable: options.workerExecutable,
            configurationFolder: URL(filePath: options.configurationFile).deletingLastPathComponent().path,
            eventLoopGroup: group
        )
        let queueFile = EventQueue.file(configuration, configurationFile: file)
        let sharedQueue = StoreOpener.postgresURL(configuration) != nil
        // Before the queue is opened: a second host must not touch the first one's running events.
        // A queue in PostgreSQL is shared by design: hosts hold their events by lease instead.
        var storageLock: StorageLock?
        if !options.supervised, !sharedQueue {
            do {
                storageLock = try StorageLock(folder: URL(filePath: queueFile).deletingLastPathComponent().path)
            } catch {
                throw ConfigurationError(file: file, path: "storage.path", message: error.message)
            }
        }
        let events: EventQueue
        do {
            let storage = try QueueStorageOpener.open(configuration, configurationFile: file)!
            events = EventQueue(
                storage: storage,
                dispatcher: dispatcher,
                clock: options.queueClock,
                logger: logger,
                recovers: options.recoversQueue
            )
        } catch {
            throw ConfigurationError(
                file: file,
                path: sharedQueue ? "storage.postgres" : "storage.path",
                message: "cannot open the queue: \(error)"
            )
        }
        let state = HostState()
        self.options = options
        self.dispatcher = dispatcher
        self.opener = opener
        self.events = events
        self.state = state
        self.logger = logger
        self.catalog = catalog
        self.eventLoopGroup = group
        self.storageLock = storageLock
        var metrics: HostMetrics?
        var recent: RecentInvocations?
        if let counted {
            let kept = RecentInvocations()
            dispatcher.events.observe { event in
                counted.record(event)
                kept.record(event)
            }
            (metrics, recent) = (counted, kept)
        }
        self.responder = HostResponder(
            dispatcher: dispatcher,
            events: events,
            state: state,
            logger: logger,
            build: options.build,
            metrics: metrics,
            recent: recent,
            stores: opener
        )
    }

    /// Where the host listens: `--socket`, else `--host`/`--port` over runtime.json's `server`.
    public var listenAddress: ListenAddress {
        Self.listenAddress(options, server: dispatcher.deployment.configuration.server)
    }

    static func listenAddress(_ options: HostOptions, server: RuntimeConfiguration.Server) -> ListenAddress {
        if let socket = options.socket { return .socket(path: socket) }
        return .tcp(host: options.host ?? server.host, port: options.port ?? server.port)
    }

    /// The Hummingbird application; `run(onListening:)` serves it with the host's other services.
    public func application(
        onListening: @escaping @Sendable (String) -> Void = { _ in }
    ) -> Application<HostFrontDoor> {
        let address = listenAddress.bindAddress
        let idle = options.idleTimeout.components.seconds
        let server = dispatcher.deployment.configuration.server
        let limits = ConnectionLimits(
            maxConnections: server.maxConnections ?? ConnectionLimits.defaultMaxConnections,
            requestTimeout: .seconds(server.requestTimeout),
            logger: logger
        )
        let frontDoor = responder.router()
        return Application(
            responder: frontDoor,
            server: HTTPServerBuilder { responder in
                GuardedHTTP1Channel(
                    inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .seconds(idle))),
                    limits: limits,
                    frontDoor: frontDoor
                )
            },
            configuration: ApplicationConfiguration(address: address, serverName: Self.serverName),
            onServerRunning: { [socketMode = options.socketMode] channel in
                if let socketMode, let path = channel.localAddress?.pathname {
                    _ = chmod(path, mode_t(socketMode))
                }
                let address =
                    switch channel.localAddress {
                    case .unixDomainSocket: "unix:\(channel.localAddress?.pathname ?? "")"
                    case let address?:
                        "http://\(address.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""):\(address.port ?? 0)"
                    case nil: "an unknown address"
                    }
                onListening(address)
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns. Throws ``ListenError`` when the
    /// address cannot be listened on.
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        // Trap SIGHUP before anything listens: its default action would end the process.
        try listenAddress.checkSocketPath()
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let logger = self.logger
        let options = self.options
        let limitsMemory = dispatcher.deployment.functions.values.contains {
            $0.configuration.isolation == .process
        }
        let opener = self.opener
        let postgres = StoreOpener.postgresURL(dispatcher.deployment.configuration).flatMap {
            try? PostgresURL($0).description
        }
        let application = application { address in
            // Only once listening: a host that cannot listen says one line and nothing else.
            if limitsMemory {
                logger.notice("worker processes: memory limited by \(MemoryLimiter.shared.description)")
                logger.notice("worker processes: kept apart by \(Sandbox.shared.description)")
            }
            if let location = postgres {
                // Said at once, not at the first call: a database that cannot be used is found now.
                Task {
                    do {
                        try await opener.store().prepare()
                        logger.notice("store: PostgreSQL at \(location)")
                    } catch {
                        logger.error("store: \(error); store calls fail until it answers")
                    }
                }
            }
            if let build = options.build {
                // The watcher says where the public address is; this is its private one.
                logger.notice("build \(build) ready at \(address)")
            } else {
                logger.notice("listening on \(address)")
            }
            onListening(address)
        }
        if options.supervised {
            // A build of `serve --watch` ends with its watcher, even one killed with SIGKILL: it
            // looks at its parent once a second and stops (draining, as on SIGTERM) when it has gone.
            let parent = getppid()
            Task.detached {
                while getppid() == parent { try? await Task.sleep(for: .seconds(1)) }
                logger.notice("the watcher has gone; stopping")
                kill(getpid(), SIGTERM)
            }
        }
        let reload = ReloadService(
            signals: hangups,
            file: options.configurationFile,
            catalog: catalog,
            dispatcher: dispatcher,
            logger: logger
        )
        // Shutdown runs in reverse order: draining flag, server (finishes its requests), events,
        // then every environment.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: EnvironmentService(dispatcher: dispatcher)),
                    .init(service: events),
                    .init(service: PurgeService(opener: opener, logger: logger)),
                    .init(service: reload),
                    .init(service: application),
                    .init(
                        service: DrainService(
                            state: state,
                            onDrain: { [events, dispatcher] in
                                events.stopDelivering()
                                dispatcher.events.finishSubscriptions()
                            }
                        )
                    ),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            if let listenError = ListenError(error, address: listenAddress) { throw listenError }
            throw error
        }
        logger.notice("stopped")
    }
}
