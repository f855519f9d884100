import Synchronization

/// The invocation outlived its deadline.
struct DeadlineExceeded: Error {}

/// Runs `operation` until `deadline`, whichever ends first.
///
/// The operation runs in its own task, so a handler that never checks for cancellation cannot
/// hold the caller past the deadline: the caller gets ``DeadlineExceeded`` on time (within the
/// ``Watchdog``'s 10 ms) and the task is cancelled and abandoned (an inline handler cannot be
/// killed, only told to stop).
func withDeadline<Value: Sendable>(
    _ deadline: ContinuousClock.Instant,
    _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    let race = DeadlineRace<Value>()
    // Scheduled before the work starts, so that work which ends at once still withdraws it.
    Watchdog.shared.schedule(at: deadline, race)
    race.started(
        Task {
            do {
                race.settle(.success(try await operation()))
            } catch {
                race.settle(.failure(error))
            }
        }
    )
    return try await withTaskCancellationHandler {
        try await withUnsafeThrowingContinuation { continuation in race.wait(continuation) }
    } onCancel: {
        race.cancelWork()
    }
}

/// The race between an operation and its deadline: whichever ends first answers the caller, once.
///
/// One object is the operation's outcome, the caller's continuation and the watchdog's entry, so
/// that an invocation's deadline costs one allocation: it runs for every invocation.
final class DeadlineRace<Value: Sendable>: Watchdog.Entry, @unchecked Sendable {
    private struct State {
        var outcome: Result<Value, any Error>?
        var waiter: UnsafeContinuation<Value, any Error>?
        /// The operation's task, until the race is settled.
        var work: Task<Void, Never>?
        var isSettled = false
    }

    private let state = Mutex(State())

    /// Keeps the operation's task, to cancel it; cancels it now if the deadline has come already.
    func started(_ work: Task<Void, Never>) {
        let isOver = state.withLock { state in
            if !state.isSettled { state.work = work }
            return state.isSettled
        }
        if isOver { work.cancel() }
    }

    /// Settles the race with `outcome` unless it is settled already; returns the operation's task
    /// when this call settled it, and answers the caller if it waits.
    @discardableResult
    func settle(_ outcome: Result<Value, any Error>) -> Task<Void, Never>?? {
        let settled: (waiter: UnsafeContinuation<Value, any Error>?, work: Task<Void, Never>?)? = state.withLock {
            state in
            guard !state.isSettled else { return nil }
            state.isSettled = true
            defer {
                state.waiter = nil
                state.work = nil
            }
            if state.waiter == nil { state.outcome = outcome }
            return (state.waiter, state.work)
        }
        guard let settled else { return nil }
        // Ended before its deadline: the watchdog need not keep it (after it fired, this does nothing).
        Watchdog.shared.withdraw(self)
        settled.waiter?.resume(with: outcome)
        return .some(settled.work)
    }

    /// Answers `continuation` with the outcome, now if the race is settled already.
    func wait(_ continuation: UnsafeContinuation<Value, any Error>) {
        let outcome: Result<Value, any Error>? = state.withLock { state in
            guard let outcome = state.outcome else {
                state.waiter = continuation
                return nil
            }
            state.outcome = nil
            return outcome
        }
        if let outcome { continuation.resume(with: outcome) }
    }

    /// The deadline: the caller hears ``DeadlineExceeded`` and the operation is told to stop.
    override func expire() {
        if case .some(let work) = settle(.failure(DeadlineExceeded())) { work?.cancel() }
    }

    /// Tells the operation to stop (the caller was cancelled); the race goes on.
    func cancelWork() {
        state.withLock { $0.work }?.cancel()
    }
}
