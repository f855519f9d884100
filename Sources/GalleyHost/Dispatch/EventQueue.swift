import Logging
import ServiceLifecycle
import Synchronization

/// Asynchronous (`Event`) invocations: accepted at once, run in the background, and finished
/// before the host exits.
///
/// Throttled events wait for a free slot (backing off up to 1 s), as Lambda's queue does. A
/// failed event is logged and not retried, and the queue lives in memory: events still queued
/// when the process dies are lost.
final class EventQueue: Service, Sendable {
    private struct State {
        var running = 0
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    let dispatcher: Dispatcher
    let logger: Logger

    init(dispatcher: Dispatcher, logger: Logger) {
        self.dispatcher = dispatcher
        self.logger = logger
    }

    func submit(_ invocation: Invocation) {
        state.withLock { $0.running += 1 }
        Task {
            defer { finish() }
            var backoff: Duration = .milliseconds(50)
            while true {
                do throws(InvokeError) {
                    let result = try await dispatcher.invoke(invocation)
                    if result.isFunctionError {
                        logger.warning(
                            "RequestId: \(invocation.requestID) the Event invocation of \(invocation.function) failed: \(String(decoding: result.payload, as: UTF8.self))"
                        )
                    }
                    return
                } catch  where error.code == .tooManyRequests {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(1))
                } catch {
                    logger.error(
                        "RequestId: \(invocation.requestID) the Event invocation was refused: \(error.message)"
                    )
                    return
                }
            }
        }
    }

    private func finish() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.running == 0 else { return [] }
            defer { state.drained = [] }
            return state.drained
        }
        waiters.forEach { $0.resume() }
    }

    /// Runs until shutdown, then waits for every accepted event to finish.
    func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.running == 0 { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
