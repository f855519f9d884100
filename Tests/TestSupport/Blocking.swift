import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Blocking work (file I/O, a program run to its end, a server started) off Swift's cooperative
/// threads: with two cores there are two of them, and tests that block them starve every other
/// task, past the deadlines some of them check.
public enum Blocking {
    static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// Runs `body` on a thread of its own and waits for it without holding one of the pool's.
    public static func run<Value: Sendable>(_ body: @escaping @Sendable () -> Value) async -> Value {
        _ = ignoreBrokenPipes
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    /// The same, for work that throws.
    public static func run<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        _ = ignoreBrokenPipes
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}
