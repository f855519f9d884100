import Synchronization

/// The wall clock the queue reads for due times, retry delays, event ages and schedules, in Unix
/// epoch milliseconds. Tests inject a ``ManualQueueClock`` to move time without waiting.
public protocol QueueClock: Sendable {
    /// Now, in Unix epoch milliseconds.
    func now() -> Int64
    /// Runs `action` once the clock reaches `time`; the returned cancel stops it.
    func schedule(at time: Int64, _ action: @escaping @Sendable () -> Void) -> @Sendable () -> Void
}

/// The real clock: `CLOCK_REALTIME`, with timers on the host's watchdog thread.
public struct SystemQueueClock: QueueClock {
    public init() {}

    public func now() -> Int64 { Timestamp.epochMilliseconds() }

    public func schedule(at time: Int64, _ action: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        let ticket = Watchdog.shared.schedule(at: .now + .milliseconds(max(0, time - now())), action)
        return { ticket.cancel() }
    }
}

/// A clock that moves only when told to.
public final class ManualQueueClock: QueueClock {
    private struct Timer {
        let id: Int
        let time: Int64
        let action: @Sendable () -> Void
    }

    private let state: Mutex<(now: Int64, timers: [Timer], nextID: Int)>

    /// Starts at `start` (Unix epoch milliseconds).
    public init(start: Int64) {
        state = Mutex((start, [], 0))
    }

    public func now() -> Int64 { state.withLock { $0.now } }

    public func schedule(at time: Int64, _ action: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        let id: Int? = state.withLock { state in
            guard time > state.now else { return nil }
            state.nextID += 1
            state.timers.append(Timer(id: state.nextID, time: time, action: action))
            return state.nextID
        }
        guard let id else {
            action()
            return {}
        }
        return { [self] in self.state.withLock { $0.timers.removeAll { $0.id == id } } }
    }

    /// Moves the clock on by `milliseconds` and fires the timers that came due.
    public func advance(by milliseconds: Int64) {
        let due = state.withLock { state -> [Timer] in
            state.now += milliseconds
            let now = state.now
            let due = state.timers.filter { $0.time <= now }
            state.timers.removeAll { $0.time <= now }
            return due
        }
        due.forEach { $0.action() }
    }
}
