import Foundation
import Functions
import Galley
import Logging
import Synchronization
import TestSupport
import Testing

@testable import GalleyHost
@testable import GalleyPostgres

/// Polls `condition` until it holds or 30 s pass; records an issue naming `what` if it never does.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)")
            return
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// A value made on first use and kept (the first made, should two be made at once).
final class Once<Value: Sendable>: Sendable {
    private let made = Mutex<Value?>(nil)

    func value(_ make: () async throws -> Value) async rethrows -> Value {
        if let made = made.withLock({ $0 }) { return made }
        let value = try await make()
        return made.withLock { made in
            if let made { return made }
            made = value
            return value
        }
    }
}

/// Where the queue under test keeps its events.
enum QueueBackend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL too when it is installed, and always in CI (where a cluster that
    /// cannot start fails them).
    static let conformance: [QueueBackend] = [.sqlite] + (PostgresCluster.isWanted ? [.postgres] : [])
}

/// The async queue driven directly, with inline functions and a manual clock, on each storage:
/// the same behaviour on SQLite and on PostgreSQL.
@Suite(.serialized)
struct EventQueueTests {
    static let start: Int64 = 1_795_000_000_000  // 2026-11-18T11:06:40Z
    let temporary: TemporaryDirectory
    var folder: URL { temporary.url }
    let clock = ManualQueueClock(start: Self.start)
    /// One database per test, made on first use.
    private let database = Once<String>()

    init() throws {
        temporary = try TemporaryDirectory(prefix: "galley-queue")
    }

    /// `fails` always throws; `sink` and `ok` succeed.
    func configuration(_ edit: (inout RuntimeConfiguration) -> Void = { _ in }) -> RuntimeConfiguration {
        func inline(_ handler: String) -> FunctionConfiguration {
            var function = FunctionConfiguration(handler: handler)
            function.isolation = .inline
            return function
        }
        var fails = inline("Inspect")
        fails.onFailure = "sink"
        var configuration = RuntimeConfiguration(
            functions: ["fails": fails, "sink": inline("Inspect"), "ok": inline("Hello")]
        )
        edit(&configuration)
        return configuration
    }

    /// The test's storage: the same file, or the same database, every time.
    func storage(_ backend: QueueBackend) async throws -> any QueueStorage {
        switch backend {
        case .sqlite:
            return try QueueFile(path: folder.appending(path: "queue.sqlite").path)
        case .postgres:
            let url = try await database.value { try await PostgresCluster.database() }
            var logger = Logger(label: "test")
            logger.logLevel = .error
            return PostgresQueue(database: try PostgresDatabase(url: url, logger: logger, timeout: .seconds(120)))
        }
    }

    func makeQueue(_ configuration: RuntimeConfiguration, _ backend: QueueBackend) async throws -> EventQueue {
        let deployment = try Deployment(configuration: configuration, catalog: Functions.catalog, file: "runtime.json")
        let dispatcher = Dispatcher(deployment: deployment, logWriter: LogWriter(format: .text) { _ in })
        return EventQueue(
            storage: try await storage(backend),
            dispatcher: dispatcher,
            clock: clock,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
    }

    func status(_ queue: EventQueue, _ function: String) async throws -> QueueFunctionStatus {
        try await queue.storage.status(now: clock.now()).first { $0.function == function }
            ?? QueueFunctionStatus(function: function)
    }

    func running(_ queue: EventQueue, _ body: () async throws -> Void) async throws {
        let task = Task { try await queue.run() }
        do {
            try await body()
        } catch {
            queue.shutdown()
            try await task.value
            throw error
        }
        queue.shutdown()
        try await task.value
    }

    @Test(arguments: QueueBackend.conformance)
    func aFailingEventIsTriedOnePlusRetriesTimesWithDoublingDelaysThenDeadLettered(backend: QueueBackend) async throws {
        let queue = try await makeQueue(configuration(), backend)
        try await queue.submit(Invocation(function: "fails", payload: Data(#"{"fail":"boom"}"#.utf8), kind: .event))
        try await running(queue) {
            try await eventually("the first attempt") { try await status(queue, "fails").attempts == 1 }
            // Retried after retryDelay (60 s), then after twice that.
            try await eventually("the retry is scheduled") { try await queue.storage.nextDue(function: "fails") != nil }
            #expect(try await queue.storage.nextDue(function: "fails") == Self.start + 60_000)
            clock.advance(by: 60_000)
            try await eventually("the second attempt") { try await status(queue, "fails").attempts == 2 }
            try await eventually("the second retry is scheduled") {
                try await queue.storage.nextDue(function: "fails") == Self.start + 60_000 + 120_000
            }
            clock.advance(by: 119_999)
            clock.advance(by: 1)
            try await eventually("the third attempt ends in a dead letter") {
                try await status(queue, "fails").deadLetters == 1
            }
            // The failure record went on to onFailure as an event of its own.
            try await eventually("sink received the record") { try await status(queue, "sink").delivered == 1 }
        }
        let fails = try await status(queue, "fails")
        #expect(fails.attempts == 3)
        #expect(fails.retries == 2)
        #expect(fails.delivered == 0)
        #expect(fails.depth == 0)
        let letter = try #require(try await queue.storage.deadLetters(function: "fails").first)
        #expect(letter.condition == "RetriesExhausted")
        #expect(letter.attempts == 3)
        #expect(letter.errorType == "InspectError")
        let record = try #require(try JSONSerialization.jsonObject(with: letter.record) as? [String: Any])
        #expect(record["version"] as? String == "1.0")
        #expect(record["timestamp"] as? String == Timestamp.iso8601(epochMilliseconds: Self.start + 180_000))
        let context = try #require(record["requestContext"] as? [String: Any])
        #expect(context["condition"] as? String == "RetriesExhausted")
        #expect(context["approximateInvokeCount"] as? Int == 3)
        #expect(context["functionArn"] as? String == "arn:aws:lambda:us-east-1:123456789012:function:fails:$LATEST")
        #expect(context["requestId"] as? String == letter.requestID)
        #expect((record["requestPayload"] as? [String: Any])?["fail"] as? String == "boom")
        let response = try #require(record["responseContext"] as? [String: Any])
        #expect(response["statusCode"] as? Int == 200)
        #expect(response["functionError"] as? String == "Unhandled")
        #expect(response["executedVersion"] as? String == "$LATEST")
        #expect((record["responsePayload"] as? [String: Any])?["errorMessage"] as? String == "boom")
    }

    @Test(arguments: QueueBackend.conformance)
    func replayDeliversADeadLetterAgain(backend: QueueBackend) async throws {
        let queue = try await makeQueue(configuration { $0.functions["fails"]?.retries = 0 }, backend)
        try await queue.submit(Invocation(function: "fails", payload: Data(#"{"fail":"once"}"#.utf8), kind: .event))
        try await running(queue) {
            try await eventually("the dead letter") { try await status(queue, "fails").deadLetters == 1 }
            #expect(try await queue.storage.replay(function: "fails", id: nil, at: clock.now()) == 1)
            #expect(try await status(queue, "fails").deadLetters == 0)
            // The host picks the replayed event up at its next look at the file.
            clock.advance(by: 1000)
            try await eventually("the second dead letter") { try await status(queue, "fails").deadLetters == 1 }
        }
        #expect(try await status(queue, "fails").attempts == 2)
        #expect(try await queue.storage.purge(function: "fails", id: nil) == 1)
        #expect(try await queue.storage.deadLetters(function: "fails").isEmpty)
    }

    @Test(arguments: QueueBackend.conformance)
    func anEventOlderThanMaxEventAgeIsADeadLetterWithoutAnotherAttempt(backend: QueueBackend) async throws {
        let queue = try await makeQueue(configuration { $0.functions["fails"]?.maxEventAge = 90 }, backend)
        try await queue.submit(Invocation(function: "fails", payload: Data(#"{"fail":"old"}"#.utf8), kind: .event))
        try await running(queue) {
            try await eventually("the first attempt") { try await status(queue, "fails").attempts == 1 }
            try await eventually("the retry is scheduled") { try await queue.storage.nextDue(function: "fails") != nil }
            clock.advance(by: 60_000)
            try await eventually("the second attempt") { try await status(queue, "fails").attempts == 2 }
            try await eventually("the second retry is scheduled") {
                try await queue.storage.nextDue(function: "fails") != nil
            }
            // Due at 180 s, past the 90 s age: a dead letter, not a third attempt.
            clock.advance(by: 120_000)
            try await eventually("the dead letter") { try await status(queue, "fails").deadLetters == 1 }
        }
        #expect(try await status(queue, "fails").attempts == 2)
        let letter = try #require(try await queue.storage.deadLetters(function: "fails").first)
        #expect(letter.condition == "EventAgeExceeded")
        #expect(letter.attempts == 2)
    }

    @Test(arguments: QueueBackend.conformance)
    func pastTheBoundTheCallerGetsTooManyRequestsAndNothingIsWritten(backend: QueueBackend) async throws {
        let queue = try await makeQueue(configuration { $0.queue.maxEvents = 3 }, backend)
        for _ in 0..<3 {
            try await queue.submit(Invocation(function: "ok", payload: Data("{}".utf8), kind: .event))
        }
        let error = await #expect(throws: InvokeError.self) {
            try await queue.submit(Invocation(function: "ok", payload: Data("{}".utf8), kind: .event))
        }
        #expect(error?.code == .tooManyRequests)
        #expect(error?.message.contains("queue.maxEvents 3") == true)
        #expect(try await queue.storage.totals().events == 3)
        // Refusals of the dispatcher come first and write nothing either.
        let unknown = await #expect(throws: InvokeError.self) {
            try await queue.submit(Invocation(function: "nope", payload: Data("{}".utf8), kind: .event))
        }
        #expect(unknown?.code == .functionNotFound)
        let large = await #expect(throws: InvokeError.self) {
            try await queue.submit(
                Invocation(
                    function: "ok",
                    payload: Data(repeating: 0x20, count: Dispatcher.maxAsyncPayload + 1),
                    kind: .event
                )
            )
        }
        #expect(large?.code == .requestTooLarge)
        #expect(try await queue.storage.totals().events == 3)
        // Delivered, they make room.
        try await running(queue) {
            try await eventually("all three are delivered") { try await status(queue, "ok").delivered == 3 }
        }
        try await queue.submit(Invocation(function: "ok", payload: Data("{}".utf8), kind: .event))
    }

    @Test(arguments: QueueBackend.conformance)
    func queuedEventsUseOnlyTheirShareOfConcurrency(backend: QueueBackend) async throws {
        let queue = try await makeQueue(
            configuration {
                $0.functions["sink"]?.concurrency = 4
                $0.functions["sink"]?.timeout = 10
            },
            backend
        )
        for _ in 0..<6 {
            try await queue.submit(Invocation(function: "sink", payload: Data(#"{"sleepMs":300}"#.utf8), kind: .event))
        }
        try await running(queue) {
            // The queue's share of concurrency 4 is two: two of its events run at once, never more.
            // The count is watched the whole time, not read at one instant that a busy machine
            // could place between two events' ends.
            var most = 0
            try await eventually("two events are running") {
                let running = try await status(queue, "sink").running
                most = max(most, running)
                return running == 2
            }
            // Half of concurrency 4 is left to synchronous callers.
            for _ in 0..<2 {
                let result = try await queue.dispatcher.invoke(Invocation(function: "sink", payload: Data("{}".utf8)))
                #expect(!result.isFunctionError)
            }
            try await eventually("all six are delivered") {
                let sink = try await status(queue, "sink")
                most = max(most, sink.running)
                return sink.delivered == 6
            }
            #expect(most == 2)
        }
    }

    @Test(arguments: QueueBackend.conformance)
    func anEventClaimedAsShutdownBeginsWaitsAgainWithNoAttemptCounted(backend: QueueBackend) async throws {
        let queue = try await makeQueue(configuration { $0.functions["fails"]?.retries = 0 }, backend)
        try await queue.submit(Invocation(function: "fails", payload: Data(#"{"fail":"x"}"#.utf8), kind: .event))
        queue.stopDelivering()
        _ = await queue.tick()
        let fails = try await status(queue, "fails")
        #expect(fails.running == 0)
        #expect(fails.depth == 1)
        // After a restart it is delivered once, not taken for an attempt cut short by a crash.
        #expect(try await queue.storage.recoverInterrupted() == 0)
    }

    @Test(arguments: QueueBackend.conformance)
    func aScheduleFiresOnTimeAndOnceForRunsMissedWhileStopped(backend: QueueBackend) async throws {
        let configuration = configuration { $0.functions["ok"]?.schedule = try? Schedule(parsing: "rate(5 minutes)") }
        let queue = try await makeQueue(configuration, backend)
        try await running(queue) {
            // First seen now: the first run is five minutes on.
            try await eventually("the schedule is recorded") {
                try await queue.storage.scheduledRun(function: "ok", expression: "rate(5 minutes)") == Self.start
                    + 300_000
            }
            clock.advance(by: 299_999)
            // A pass of the loop run here, so that an early run would be in the file by now.
            _ = await queue.tick()
            let early = try await status(queue, "ok")
            #expect(early.depth + early.running + early.delivered == 0)
            clock.advance(by: 1)
            try await eventually("the run") { try await status(queue, "ok").delivered == 1 }
            try await eventually("the next run is recorded") {
                try await queue.storage.scheduledRun(function: "ok", expression: "rate(5 minutes)") == Self.start
                    + 600_000
            }
        }
        // Stopped for an hour: twelve runs missed, one made up at start.
        clock.advance(by: 3_600_000)
        let restarted = try await makeQueue(configuration, backend)
        try await running(restarted) {
            try await eventually("the made-up run") { try await status(restarted, "ok").delivered == 2 }
            try await eventually("the next run is recorded") {
                try await restarted.storage.scheduledRun(function: "ok", expression: "rate(5 minutes)") == Self.start
                    + 4_200_000
            }
        }
        #expect(try await status(restarted, "ok").delivered == 2)
    }

    @Test func theScheduledEventIsEventBridges() throws {
        let payload = EventQueue.scheduledEvent(function: "ok", at: Self.start)
        let event = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        #expect(event["source"] as? String == "aws.events")
        #expect(event["detail-type"] as? String == "Scheduled Event")
        #expect(event["time"] as? String == "2026-11-18T11:06:40Z")
        #expect(event["resources"] as? [String] == ["arn:aws:events:us-east-1:123456789012:rule/galley-ok"])
        #expect((event["detail"] as? [String: Any])?.isEmpty == true)
    }
}

struct ScheduleTests {
    /// 2026-11-22T10:17:00Z, a Sunday.
    static let sunday: Int64 = 1_795_342_620_000

    func next(_ expression: String, after time: Int64 = Self.sunday) throws -> String? {
        let schedule = try Schedule(parsing: expression)
        return schedule.next(after: time, anchor: time).map { Timestamp.iso8601(epochMilliseconds: $0) }
    }

    @Test func cronExpressionsFireWhenEventBridgeWould() throws {
        #expect(Timestamp.iso8601(epochMilliseconds: Self.sunday) == "2026-11-22T10:17:00.000Z")
        #expect(try next("cron(0 12 * * ? *)") == "2026-11-22T12:00:00.000Z")
        #expect(try next("cron(0/15 * * * ? *)") == "2026-11-22T10:30:00.000Z")
        #expect(try next("cron(0 10 * * ? *)") == "2026-11-23T10:00:00.000Z")
        #expect(try next("cron(0 8 ? * MON-FRI *)") == "2026-11-23T08:00:00.000Z")
        #expect(try next("cron(30 9 ? * 1 *)") == "2026-11-29T09:30:00.000Z")
        #expect(try next("cron(0 0 L * ? *)") == "2026-11-30T00:00:00.000Z")
        #expect(try next("cron(0 0 1 JAN,JUL ? *)") == "2027-01-01T00:00:00.000Z")
        #expect(try next("cron(0 0 29 2 ? *)") == "2028-02-29T00:00:00.000Z")
        #expect(try next("cron(0 12 ? * FRI#2 *)") == "2026-12-11T12:00:00.000Z")
        #expect(try next("cron(0 12 ? * 6L *)") == "2026-11-27T12:00:00.000Z")
        #expect(throws: ScheduleError.self, "a year that has passed never fires") {
            try Schedule(parsing: "cron(0 0 1 1 ? 2025)")
        }
        #expect(try next("rate(1 minute)") == "2026-11-22T10:18:00.000Z")
        #expect(try next("rate(2 hours)") == "2026-11-22T12:17:00.000Z")
    }

    @Test(arguments: [
        ("every 5 minutes", "is not a schedule"),
        ("rate(5 minute)", "write 5 minutes"),
        ("rate(1 minutes)", "write 1 minute"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5 seconds)", "minutes, hours or days"),
        ("cron(0 12 * * *)", "six fields"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(61 12 * * ? *)", "'61' is not between 0 and 59"),
        ("cron(0 12 ? * FOO *)", "'FOO' is not between 1 and 7"),
        ("cron(0 5-2 * * ? *)", "runs backwards"),
    ])
    func badExpressionsAreRefusedSayingWhy(expression: String, reason: String) {
        let error = #expect(throws: ScheduleError.self) { try Schedule(parsing: expression) }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }
}

/// The queue file's schema steps.
struct QueueFileMigrationTests {
    @Test func aFileOfTheFirstSchemaGainsTraceHeadersAndKeepsItsEvents() async throws {
        let folder = try TemporaryDirectory()
        let path = folder.url.appending(path: "queue.sqlite").path
        do {
            let file = try QueueFile(path: path)
            _ = try await file.accept(
                NewQueuedEvent(function: "ok", requestID: "r1", payload: Data("{}".utf8), acceptedAt: 1),
                maxEvents: 10,
                maxBytes: 1000
            )
            // Back to the first schema, as a file written before traces were kept.
            try await file.write { connection in
                try connection.execute("ALTER TABLE events DROP COLUMN trace_headers")
            }
            try await file.write { connection in try connection.execute("PRAGMA user_version = 1") }
        }
        let reopened = try QueueFile(path: path)
        let claimed = try await reopened.claim(function: "ok", limit: 10, now: 2)
        #expect(claimed.map(\.requestID) == ["r1"])
        #expect(claimed.first?.traceHeaders == [:])
        _ = try await reopened.accept(
            NewQueuedEvent(
                function: "ok",
                requestID: "r2",
                payload: Data("{}".utf8),
                traceHeaders: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"],
                acceptedAt: 3
            ),
            maxEvents: 10,
            maxBytes: 1000
        )
        let next = try await reopened.claim(function: "ok", limit: 10, now: 4)
        #expect(next.first?.traceHeaders["traceparent"]?.hasPrefix("00-0af76519") == true)
    }
}
