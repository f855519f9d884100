import Foundation
import Functions
import Galley
import Logging
import TestSupport
import Testing

@testable import GalleyHost
@testable import GalleyPostgres

/// What only a queue shared by several hosts has to get right: claims that never overlap, leases
/// that a stopped host loses, and schedules that run once per period whichever host looks.
@Suite(.enabled(if: PostgresCluster.isWanted, "PostgreSQL is not installed"))
struct PostgresQueueTests {
    let url: String

    init() async throws {
        url = try await PostgresCluster.database()
    }

    /// A host's view of the test's database: its own pool and its own claims.
    func host(lease: Double = 30, renews: Bool = true) throws -> PostgresQueue {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let database = try PostgresDatabase(url: url, logger: logger, timeout: .seconds(120))
        return PostgresQueue(database: database, lease: lease, renewsEvery: renews ? .seconds(lease / 3) : nil)
    }

    /// A logger that says nothing short of a crash.
    static let quiet = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    /// A call the host gave up on does not run on in PostgreSQL, holding its connection (and any
    /// locks): the server ends it at twice the call's timeout.
    @Test func aStatementPastItsCallIsEndedByPostgreSQL() async throws {
        let logger = Self.quiet
        let database = try PostgresDatabase(url: url, logger: logger, timeout: .seconds(1))
        await #expect(throws: StoreError.self) {
            try await database.call(PostgresStore.schema) { client in
                try await client.query("SELECT pg_sleep(60)", logger: logger)
            }
        }
        // Without the server's limit the sleep would go on for a minute.
        let observer = try PostgresDatabase(url: url, logger: logger, timeout: .seconds(30))
        let deadline = ContinuousClock.now + .seconds(30)
        var running = 1
        while ContinuousClock.now < deadline {
            running = try await observer.call(PostgresStore.schema) { client in
                var count = 0
                let rows = try await client.query(
                    """
                    SELECT count(*)::int FROM pg_stat_activity
                    WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()
                    """,
                    logger: logger
                )
                for try await value in rows.decode(Int.self) { count = value }
                return count
            }
            if running == 0 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(running == 0, "the abandoned statement still runs in PostgreSQL")
    }

    /// A schema check that never finishes (here: its lock never granted) does not keep every later
    /// call waiting on it: past its patience the next call says so in the log and starts another,
    /// which goes through once the lock is free.
    @Test func aSchemaCheckThatNeverFinishesIsStartedAgain() async throws {
        let quiet = Self.quiet
        // Another session holds the lock every migration takes, until the test lets go.
        let blocker = try PostgresDatabase(url: url, logger: quiet, timeout: .seconds(30))
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (lockTaken, locked) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await blocker.client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(PostgresDatabase.migrationLock))", logger: quiet)
                locked.yield()
                for await _ in released { break }
                try await connection.query(
                    "SELECT pg_advisory_unlock(\(PostgresDatabase.migrationLock))",
                    logger: quiet
                )
            }
        }
        for await _ in lockTaken { break }
        let lines = LogLines()
        var logger = Logger(label: "galley.postgres") { _ in lines.handler() }
        logger.logLevel = .warning
        let database = try PostgresDatabase(url: url, logger: logger, timeout: .seconds(1))
        func count() async throws -> Int {
            try await database.call(PostgresStore.schema) { client in
                for try await value in try await client.query("SELECT 1::int", logger: quiet).decode(Int.self) {
                    return value
                }
                return 0
            }
        }
        await #expect {
            try await count()
        } throws: { error in
            (error as? StoreError)?.message.contains("waiting for the store schema to be checked") == true
        }
        #expect(lines.all.isEmpty)
        // Past the check's patience, the next call gives up on it.
        try await Task.sleep(until: .now + database.migrationPatience)
        await #expect(throws: StoreError.self) { try await count() }
        #expect(lines.all.contains { $0.contains("the store schema check has not finished") }, "\(lines.all)")
        release.yield()
        try await holder.value
        let deadline = ContinuousClock.now + .seconds(60)
        var answer = 0
        while ContinuousClock.now < deadline, answer != 1 { answer = (try? await count()) ?? 0 }
        #expect(answer == 1)
    }

    func accept(_ queue: PostgresQueue, _ count: Int, function: String = "ok") async throws {
        try await withThrowingTaskGroup(of: QueueAcceptance.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await queue.accept(
                        NewQueuedEvent(
                            function: function,
                            requestID: "r\(index)",
                            payload: Data(#"{"n":\#(index)}"#.utf8),
                            acceptedAt: 1
                        ),
                        maxEvents: 100_000,
                        maxBytes: 1 << 30
                    )
                }
            }
            for try await acceptance in group { #expect(acceptance == .accepted) }
        }
    }

    @Test func twoHostsClaimingAtOnceNeverTakeTheSameEvent() async throws {
        let (first, second) = (try host(), try host())
        try await accept(first, 300)
        #expect(try await second.totals().events == 300)
        // Four claimers on each host claim and finish as fast as they can until nothing is left.
        func drain(_ queue: PostgresQueue) async throws -> [String] {
            try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var taken: [String] = []
                        while true {
                            let events = try await queue.claim(function: "ok", limit: 5, now: 2)
                            if events.isEmpty { return taken }
                            for event in events {
                                try await queue.finish(event, .delivered(onSuccess: nil))
                                taken.append(event.requestID)
                            }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }
        async let one = drain(first)
        async let two = drain(second)
        let (a, b) = try await (one, two)
        #expect(a.count + b.count == 300)
        #expect(Set(a + b).count == 300, "an event was claimed twice")
        #expect(Set(a).intersection(b).isEmpty, "both hosts claimed the same events")
        let status = try #require(try await first.status(now: 2).first { $0.function == "ok" })
        #expect(status.delivered == 300)
        #expect(status.attempts == 300)
        #expect(status.depth == 0 && status.running == 0)
        #expect(try await second.totals() == (0, 0))
    }

    @Test func anEventOfAHostThatStopsAnsweringIsTakenOverWhenItsLeaseRunsOut() async throws {
        let stopped = try host(lease: 2, renews: false)
        let other = try host(lease: 30)
        try await accept(stopped, 1)
        let held = ContinuousClock.now
        let claimed = try #require(try await stopped.claim(function: "ok", limit: 10, now: 2).first)
        // While the lease runs, the event is not the other host's (checked only when the other
        // claim came within the lease, which began after `held`: a busy machine may take longer,
        // and then the other host has rightly taken it over already).
        var taken = try await other.claim(function: "ok", limit: 10, now: 2)
        if ContinuousClock.now - held < .seconds(2) {
            #expect(taken.isEmpty, "a held event was claimed")
        }
        if taken.isEmpty {
            // Once the lease has run out the other host sees the event as due...
            try await eventually("the lease runs out") { try await other.nextDue(function: "ok") == 0 }
            // ...unless its holder renews in time: a renewal holds it again (checked the same way).
            let renewed = ContinuousClock.now
            await stopped.renewLeases()
            taken = try await other.claim(function: "ok", limit: 10, now: 2)
            if ContinuousClock.now - renewed < .seconds(2) {
                #expect(taken.isEmpty, "a renewed event was claimed")
            }
        }
        if taken.isEmpty {
            try await eventually("the lease runs out again") { try await other.nextDue(function: "ok") == 0 }
            taken = try await other.claim(function: "ok", limit: 10, now: 2)
        }
        let event = try #require(taken.first)
        #expect(taken.map(\.requestID) == ["r0"])
        #expect(event.resumed)
        #expect(event.attempts == 1, "the interrupted attempt counts")
        // The stopped host coming back to finish changes nothing: the event is no longer its own.
        try await stopped.finish(claimed, .deadLetter(letter(), onFailure: nil, countsAttempt: true))
        #expect(try await other.deadLetters(function: "ok").isEmpty)
        try await other.finish(event, .delivered(onSuccess: nil))
        let status = try #require(try await other.status(now: 2).first { $0.function == "ok" })
        #expect(status.delivered == 1)
        #expect(status.attempts == 1)
        #expect(try await other.totals().events == 0)
    }

    @Test func aScheduleRunsOncePerPeriodHoweverManyHostsLook() async throws {
        let hosts = try (0..<3).map { _ in try host() }
        let schedule = try Schedule(parsing: "rate(1 minute)")
        let start: Int64 = 1_795_000_000_000
        func run(at now: Int64) -> ScheduledRun {
            ScheduledRun(
                function: "ok",
                expression: schedule.expression,
                now: now,
                next: { schedule.next(after: now, anchor: $0) },
                event: {
                    NewQueuedEvent(function: "ok", requestID: "run-\($0)", payload: Data("{}".utf8), acceptedAt: now)
                }
            )
        }
        var fired: [Int64] = []
        // Ten periods; in each, every host looks three times, all at once.
        for minute in 0...10 {
            let now = start + Int64(minute) * 60_000 + 1
            let steps = try await withThrowingTaskGroup(of: ScheduleStep.self) { group in
                for host in hosts {
                    for _ in 0..<3 { group.addTask { try await host.fire(run(at: now)) } }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for case .fired(let time) in steps { fired.append(time) }
        }
        // Armed at the first look, then one run a minute: ten runs, each period once.
        #expect(fired.count == 10, "\(fired)")
        #expect(Set(fired).count == fired.count)
        #expect(try await hosts[0].totals().events == 10)
    }

    func letter() -> DeadLetterRecord {
        DeadLetterRecord(
            failedAt: 3,
            condition: "RetriesExhausted",
            attempts: 1,
            errorType: nil,
            record: Data("{}".utf8)
        )
    }
}
