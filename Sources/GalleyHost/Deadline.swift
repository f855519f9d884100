/// The invocation outlived its deadline.
struct DeadlineExceeded: Error {}

/// Runs `operation` until `deadline`, whichever ends first.
///
/// The operation runs in its own task, so a handler that never checks for cancellation cannot
/// hold the caller past the deadline: the caller gets ``DeadlineExceeded`` on time and the task
/// is cancelled and abandoned (an inline handler cannot be killed, only told to stop).
func withDeadline<Value: Sendable>(
    _ deadline: ContinuousClock.Instant,
    _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    let outcome = Once<Result<Value, any Error>>()
    let timer = Once<Task<Void, Never>>()
    let work = Task {
        let result: Result<Value, any Error>
        do {
            result = .success(try await operation())
        } catch {
            result = .failure(error)
        }
        if outcome.resolve(result) { timer.onResolve { $0.cancel() } }
    }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
            outcome.onResolve { continuation.resume(with: $0) }
            timer.resolve(
                Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if outcome.resolve(.failure(DeadlineExceeded())) { work.cancel() }
                }
            )
        }
    } onCancel: {
        work.cancel()
    }
}
