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
    let outcome = Once<Result<Value, any Error>>()
    let work = Task {
        let result: Result<Value, any Error>
        do {
            result = .success(try await operation())
        } catch {
            result = .failure(error)
        }
        outcome.resolve(result)
    }
    let ticket = Watchdog.shared.schedule(at: deadline) {
        if outcome.resolve(.failure(DeadlineExceeded())) { work.cancel() }
    }
    return try await withTaskCancellationHandler {
        defer { ticket.cancel() }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
            outcome.onResolve { continuation.resume(with: $0) }
        }
    } onCancel: {
        work.cancel()
    }
}
