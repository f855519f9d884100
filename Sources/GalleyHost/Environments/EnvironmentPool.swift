import Galley
import Synchronization

/// A function's environments: at most `concurrency` of them, each serving one invocation at a
/// time, kept warm between invocations and shut down when they fail, sit idle past the
/// function's `idleTimeout`, or the function is redeployed.
final class EnvironmentPool: Sendable {
    /// What ``reserve()`` hands out: a warm environment, or a slot for a cold start.
    enum Reservation {
        case warm(any ExecutionEnvironment)
        case cold
    }

    private struct Idle {
        var environment: any ExecutionEnvironment
        var since: ContinuousClock.Instant
    }

    private struct State {
        var idle: [Idle] = []
        var busy = 0
        var retired = false
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Claims a slot, or `nil` when all `limit` are busy. Idle environments whose process died
    /// are dropped on the way.
    func reserve() -> Reservation? {
        let (reservation, dead): (Reservation?, [any ExecutionEnvironment]) = state.withLock { state in
            guard state.busy < limit else { return (nil, []) }
            state.busy += 1
            var dead: [any ExecutionEnvironment] = []
            while let last = state.idle.popLast() {
                if last.environment.isAlive { return (.warm(last.environment), dead) }
                dead.append(last.environment)
            }
            return (.cold, dead)
        }
        Self.shutDown(dead)
        return reservation
    }

    /// Gives a slot back; the environment stays warm when `keep` is true and the pool is not retired.
    func release(_ environment: (any ExecutionEnvironment)?, keep: Bool) {
        let keeps = state.withLock { state in
            state.busy -= 1
            guard let environment, keep, !state.retired, environment.isAlive else { return false }
            state.idle.append(Idle(environment: environment, since: .now))
            return true
        }
        if !keeps, let environment { Self.shutDown([environment]) }
    }

    /// Adds a pre-started environment (`warm`), unless the pool is full or retired.
    func add(_ environment: any ExecutionEnvironment) {
        let kept = state.withLock { state in
            guard !state.retired, state.idle.count + state.busy < limit else { return false }
            state.idle.append(Idle(environment: environment, since: .now))
            return true
        }
        if !kept { Self.shutDown([environment]) }
    }

    /// Shuts down environments idle for longer than `timeout`.
    func reap(idleFor timeout: Duration, now: ContinuousClock.Instant = .now) {
        let expired = state.withLock { state in
            let (old, fresh) = (
                state.idle.filter { now - $0.since >= timeout }, state.idle.filter { now - $0.since < timeout }
            )
            state.idle = fresh
            return old.map(\.environment)
        }
        Self.shutDown(expired)
    }

    /// Stops handing out environments: idle ones are shut down now and busy ones when released.
    /// Returns when the idle ones are gone.
    func retire() async {
        let idle = state.withLock { state in
            state.retired = true
            defer { state.idle = [] }
            return state.idle.map(\.environment)
        }
        await withTaskGroup(of: Void.self) { group in
            for environment in idle { group.addTask { await environment.shutdown() } }
        }
    }

    /// How many invocations are running now.
    var busy: Int { state.withLock { $0.busy } }
    /// Environments ready for an invocation.
    var idleCount: Int { state.withLock { $0.idle.count } }

    private static func shutDown(_ environments: [any ExecutionEnvironment]) {
        guard !environments.isEmpty else { return }
        Task {
            for environment in environments { await environment.shutdown() }
        }
    }
}
