import Galley
import Synchronization

/// A function's warm environments and how many invocations are running, bounded by its
/// `concurrency`.
final class FunctionPool: Sendable {
    /// An environment: a handler after its init phase, serving one invocation at a time.
    struct Environment: Sendable {
        let handler: PreparedHandler
    }

    private struct State {
        var idle: [Environment] = []
        var busy = 0
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Claims a slot: a warm environment, `.some(nil)` for a cold start, or `nil` when all
    /// `limit` slots are busy.
    func reserve() -> Environment?? {
        state.withLock { state in
            guard state.busy < limit else { return .none }
            state.busy += 1
            return .some(state.idle.popLast())
        }
    }

    /// Gives a slot back, keeping its environment warm unless it is `nil` (it failed or timed out).
    func release(_ environment: Environment?) {
        state.withLock { state in
            state.busy -= 1
            if let environment { state.idle.append(environment) }
        }
    }

    /// How many invocations are running now.
    var busy: Int { state.withLock { $0.busy } }
}
