import Galley
import Logging
import ServiceLifecycle
import UnixSignals

/// Re-reads runtime.json on SIGHUP. A valid file takes effect for new invocations (running ones
/// finish on the old configuration; unchanged functions stay warm); an invalid one is refused
/// with a logged error and the running configuration stays.
struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let file: String
    let catalog: Catalog
    let dispatcher: Dispatcher
    let logger: Logger

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        let current = dispatcher.deployment
        do {
            let configuration = try RuntimeConfiguration.load(from: file)
            let deployment = try Deployment(
                configuration: configuration,
                catalog: catalog,
                file: file,
                previous: current
            )
            let waiting = configuration.restartOnlyChanges(from: current.configuration)
            if !waiting.isEmpty {
                logger.warning(
                    "\(file): changes to \(waiting.joined(separator: ", ")) take effect when the host restarts; the rest take effect now"
                )
            }
            dispatcher.replaceDeployment(deployment)
            logger.notice("reloaded \(file): \(deployment.functions.keys.sorted().joined(separator: ", "))")
        } catch {
            logger.error("reload refused, the running configuration stays: \(error)")
        }
    }
}

/// Frees the space of expired store entries once a minute, when the store is open.
struct PurgeService: Service {
    let opener: StoreOpener
    let logger: Logger
    var interval: Duration = .seconds(60)

    func run() async throws {
        while !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            guard let store = opener.openedStore else { continue }
            do {
                var purged = 0
                repeat {
                    purged = try await store.purgeExpired(limit: 1000)
                } while purged == 1000
            } catch {
                logger.warning("could not purge expired store entries: \(error)")
            }
        }
    }
}

/// Marks the host as draining as soon as shutdown begins, before the server stops: listed last,
/// it is the first service told to shut down.
struct DrainService: Service {
    let state: HostState
    /// Also run when shutdown begins: the async queue stops starting deliveries.
    var onDrain: @Sendable () -> Void = {}

    func run() async throws {
        try? await gracefulShutdown()
        state.startDraining()
        onDrain()
    }
}

/// Starts the `warm` environments, shuts down those idle past their function's `idleTimeout`
/// once a second, and stops every environment last when the host shuts down.
struct EnvironmentService: Service {
    let dispatcher: Dispatcher
    var interval: Duration = .seconds(1)

    func run() async throws {
        dispatcher.prewarm()
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
            for function in dispatcher.deployment.functions.values {
                function.pool.reap(idleFor: .milliseconds(Int64(function.configuration.idleTimeout * 1000)))
            }
        }
        await dispatcher.shutdown()
    }
}
