import Foundation
import Synchronization
import Testing

@testable import GalleyHost

/// The pool's order of reuse and its reaping, with stand-in environments.
struct EnvironmentPoolTests {
    final class StandIn: ExecutionEnvironment {
        let name: Int
        let stopped = Atomic<Bool>(false)
        init(_ name: Int) { self.name = name }
        func invoke(_ request: EnvironmentRequest) async -> EnvironmentOutcome { .success(Data()) }
        var peakMemoryMB: Int { 0 }
        var isAlive: Bool { !stopped.load(ordering: .relaxed) }
        func shutdown() async { stopped.store(true, ordering: .relaxed) }
    }

    func warm(_ reservation: EnvironmentPool.Reservation?) -> Int? {
        guard case .warm(let environment)? = reservation else { return nil }
        return (environment as? StandIn)?.name
    }

    @Test func theMostRecentlyUsedEnvironmentIsReusedFirst() {
        let pool = EnvironmentPool(limit: 3)
        let environments = (1...3).map(StandIn.init)
        for _ in environments { _ = pool.reserve() }
        for environment in environments { pool.release(environment, keep: true) }  // 3 is the last released
        #expect(warm(pool.reserve()) == 3)
        pool.release(environments[2], keep: true)
        // A light load, one invocation at a time, keeps using the same hot environment.
        for _ in 0..<5 {
            let reservation = pool.reserve()
            #expect(warm(reservation) == 3)
            pool.release(environments[2], keep: true)
        }
        // A burst takes them all, newest first.
        #expect([warm(pool.reserve()), warm(pool.reserve()), warm(pool.reserve())] == [3, 2, 1])
        #expect(pool.reserve() == nil, "a fourth over the limit of three")
    }

    @Test func environmentsIdleLongerThanTheTimeoutAreReapedAndShutDown() async throws {
        let pool = EnvironmentPool(limit: 2)
        let environments = [StandIn(1), StandIn(2)]
        for _ in environments { _ = pool.reserve() }
        for environment in environments { pool.release(environment, keep: true) }
        pool.reap(idleFor: .seconds(300), now: .now + .seconds(1))
        #expect(pool.idleCount == 2, "idle for a second, not 300")
        pool.reap(idleFor: .seconds(300), now: .now + .seconds(301))
        #expect(pool.idleCount == 0)
        let deadline = ContinuousClock.now + .seconds(10)
        while environments.contains(where: \.isAlive) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(environments.allSatisfy { !$0.isAlive })
    }
}

extension Optional where Wrapped == EnvironmentPool.Reservation {
    /// `nil`: the pool refused, all its slots are busy.
    static func == (lhs: Self, rhs: _OptionalNilComparisonType) -> Bool {
        if case .none = lhs { return true }
        return false
    }
}

/// A process started without a sandbox (where user namespaces are not allowed) is batch work too.
struct UnsandboxedSpawnTests {
    @Test func anUnsandboxedChildStartsAsBatchWork() async throws {
        let child = try ChildProcess(arguments: ["sleep", "30"], environment: [:], directory: nil)
        defer { close(child.output) }
        // <sched.h>'s SCHED_BATCH (Glibc's module does not export it).
        #expect(sched_getscheduler(child.pid) == 3)
        child.kill()
        _ = await child.waitForExit()
    }
}
