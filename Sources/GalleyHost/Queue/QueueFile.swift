import CSQLite
import Dispatch
import Galley
import GalleyStore
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A failure or success record kept in the storage folder (`galley dlq`).
public struct DeadLetter: Sendable {
    public let id: Int64
    public let function: String
    public let requestID: String
    /// Unix epoch milliseconds.
    public let failedAt: Int64
    /// `RetriesExhausted` or `EventAgeExceeded`.
    public let condition: String
    public let attempts: Int
    /// The function's `errorType`, when it answered with one.
    public let errorType: String?
    /// The record in Lambda's on-failure destination format.
    public let record: Data

    package init(
        id: Int64,
        function: String,
        requestID: String,
        failedAt: Int64,
        condition: String,
        attempts: Int,
        errorType: String?,
        record: Data
    ) {
        self.id = id
        self.function = function
        self.requestID = requestID
        self.failedAt = failedAt
        self.condition = condition
        self.attempts = attempts
        self.errorType = errorType
        self.record = record
    }
}

/// What the queue holds for one function, for `/_galley/queue` and `galley queue`.
public struct QueueFunctionStatus: Sendable, Equatable {
    public var function: String
    public var depth = 0
    public var running = 0
    /// The age of the oldest waiting event, in milliseconds.
    public var oldestAge: Int64?
    public var delivered = 0
    public var attempts = 0
    public var retries = 0
    public var throttles = 0
    public var deadLetters = 0

    package init(function: String) {
        self.function = function
    }
}

/// The queue's SQLite file, `queue.sqlite` beside the store: every accepted event, the dead
/// letters, the delivery counters and the schedules' next runs.
///
/// Every change is a transaction committed with `synchronous = FULL` in WAL mode, so an accepted
/// event is on disk (fsynced) before the caller hears 202. Changes are group-committed: one
/// writer thread takes every change waiting, runs each in a savepoint of one transaction, and
/// commits them with one fsync, so many concurrent callers share the cost of a sync.
final class QueueFile: QueueStorage {
    let path: String
    var location: String { path }
    private let writer: SQLiteConnection
    private let reader: Mutex<SQLiteConnection>
    private let writeQueue = DispatchQueue(label: "galley.queue.writer")
    private let pending = Mutex(GroupCommit<Change>())

    /// A change's own result, kept until its transaction commits.
    private final class Outcome<Value: Sendable>: Sendable {
        let result = Mutex<Result<Value, any Error>?>(nil)
    }

    /// One change waiting for the next commit.
    private struct Change: Sendable {
        /// Runs inside the transaction; its own failure is kept for `finish`.
        let apply: @Sendable (SQLiteConnection) -> Void
        /// Called after the commit with the commit's error, if any.
        let finish: @Sendable ((any Error)?) -> Void
    }

    /// Opens or creates the file; events marked running (the host died during their delivery)
    /// count that attempt and wait again. `interrupted` is how many there were.
    init(path: String) throws {
        self.path = path
        let folder = URL(filePath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.unavailable, "cannot create the queue folder '\(folder.path)': \(error)", cause: nil)
        }
        writer = try SQLiteConnection(path: path)
        try Self.configure(writer)
        try Self.migrate(writer)
        let reader = try SQLiteConnection(path: path)
        try Self.configure(reader)
        self.reader = Mutex(reader)
    }

    private static func configure(_ connection: SQLiteConnection) throws {
        sqlite3_busy_timeout(connection.handle, 10_000)
        guard try connection.scalarText("PRAGMA journal_mode = WAL")?.lowercased() == "wal" else {
            throw StoreError(.unavailable, "the queue file '\(connection.path)' cannot use WAL mode")
        }
        try connection.execute("PRAGMA synchronous = FULL")
    }

    private static func migrate(_ connection: SQLiteConnection) throws {
        try connection.migrate(
            steps: [
                """
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY,
                        function TEXT NOT NULL,
                        request_id TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        size INTEGER NOT NULL,
                        client_context TEXT,
                        accepted_at INTEGER NOT NULL,
                        due_at INTEGER NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        throttles INTEGER NOT NULL DEFAULT 0,
                        running INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX events_due ON events (function, due_at) WHERE running = 0;
                    CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0), events INTEGER NOT NULL, bytes INTEGER NOT NULL);
                    INSERT INTO totals VALUES (0, 0, 0);
                    CREATE TRIGGER events_added AFTER INSERT ON events BEGIN
                        UPDATE totals SET events = events + 1, bytes = bytes + NEW.size WHERE id = 0;
                    END;
                    CREATE TRIGGER events_removed AFTER DELETE ON events BEGIN
                        UPDATE totals SET events = events - 1, bytes = bytes - OLD.size WHERE id = 0;
                    END;
                    CREATE TABLE dead_letters (
                        id INTEGER PRIMARY KEY,
                        function TEXT NOT NULL,
                        request_id TEXT NOT NULL,
                        failed_at INTEGER NOT NULL,
                        condition TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        error_type TEXT,
                        record BLOB NOT NULL,
                        payload BLOB NOT NULL,
                        client_context TEXT
                    );
                    CREATE INDEX dead_letters_function ON dead_letters (function, id);
                    CREATE TABLE stats (
                        function TEXT PRIMARY KEY,
                        delivered INTEGER NOT NULL DEFAULT 0,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        retries INTEGER NOT NULL DEFAULT 0,
                        throttles INTEGER NOT NULL DEFAULT 0
                    ) WITHOUT ROWID;
                    CREATE TABLE schedules (
                        function TEXT PRIMARY KEY,
                        expression TEXT NOT NULL,
                        next_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                """,
                // 2: the caller's trace headers, for the delivery's span and the function's X-Ray header.
                "ALTER TABLE events ADD COLUMN trace_headers TEXT;",
            ],
            file: "queue"
        )
    }

    // MARK: - Group commit

    /// Runs `body` in the next group-committed transaction and returns once it is on disk.
    /// `body`'s own error undoes only its changes.
    func write<Value: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Outcome<Value>()
            let change = Change(
                apply: { connection in
                    let result = Result { try Self.savepoint(connection) { try body(connection) } }
                    outcome.result.withLock { $0 = result }
                },
                finish: { error in
                    if let error {
                        continuation.resume(throwing: error)
                    } else {
                        continuation.resume(with: outcome.result.withLock { $0 } ?? .failure(CancellationError()))
                    }
                }
            )
            if pending.withLock({ $0.add(change) }) { writeQueue.async { self.drain() } }
        }
    }

    private static func savepoint<Value>(_ connection: SQLiteConnection, _ body: () throws -> Value) throws -> Value {
        try connection.execute("SAVEPOINT change")
        do {
            let value = try body()
            try connection.execute("RELEASE change")
            return value
        } catch {
            try? connection.execute("ROLLBACK TO change")
            try? connection.execute("RELEASE change")
            throw error
        }
    }

    /// Commits what is waiting, batch after batch, until nothing is.
    private func drain() {
        while true {
            let changes = pending.withLock { $0.next() }
            if changes.isEmpty { return }
            var failure: (any Error)?
            do {
                try writer.execute("BEGIN IMMEDIATE")
                for change in changes { change.apply(writer) }
                try writer.execute("COMMIT")
            } catch {
                try? writer.execute("ROLLBACK")
                failure = error
            }
            for change in changes { change.finish(failure) }
        }
    }

    /// Runs a read on the reader connection.
    func read<Value>(_ body: (SQLiteConnection) throws -> Value) throws -> Value {
        try reader.withLock { try body($0) }
    }

    // MARK: - Events

    func accept(_ event: NewQueuedEvent, maxEvents: Int, maxBytes: Int) async throws -> QueueAcceptance {
        try await write { connection in
            let (events, bytes) = try connection.withStatement("SELECT events, bytes FROM totals WHERE id = 0") {
                _ = try $0.step()
                return (Int($0.int64(0)), Int($0.int64(1)))
            }
            guard events < maxEvents, bytes + event.payload.count <= maxBytes else {
                return .full(events: events, bytes: bytes)
            }
            try Self.insert(connection, event)
            return .accepted
        }
    }

    private static func insert(_ connection: SQLiteConnection, _ event: NewQueuedEvent) throws {
        try connection.withStatement(
            """
            INSERT INTO events (function, request_id, payload, size, client_context, accepted_at, due_at, trace_headers)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
            """
        ) { statement in
            statement.bind(1, event.function)
            statement.bind(2, event.requestID)
            statement.bind(3, event.payload)
            statement.bind(4, Int64(event.payload.count))
            statement.bind(5, optional: event.clientContext)
            statement.bind(6, event.acceptedAt)
            statement.bind(7, optional: StoredTraceHeaders.encode(event.traceHeaders))
            _ = try statement.step()
        }
    }

    /// Marks up to `limit` due events of `function` running and returns them, oldest due first.
    func claim(function: String, limit: Int, now: Int64) async throws -> [QueuedEvent] {
        try await write { connection in
            var events: [QueuedEvent] = []
            try connection.withStatement(
                """
                UPDATE events SET running = 1 WHERE id IN (
                    SELECT id FROM events WHERE function = ?1 AND running = 0 AND due_at <= ?2
                    ORDER BY due_at, id LIMIT ?3)
                RETURNING id, request_id, payload, client_context, accepted_at, attempts, throttles, trace_headers
                """
            ) { statement in
                statement.bind(1, function)
                statement.bind(2, now)
                statement.bind(3, Int64(limit))
                while try statement.step() {
                    events.append(
                        QueuedEvent(
                            id: statement.int64(0),
                            function: function,
                            requestID: statement.text(1) ?? "",
                            payload: statement.data(2),
                            clientContext: statement.text(3),
                            acceptedAt: statement.int64(4),
                            attempts: Int(statement.int64(5)),
                            throttles: Int(statement.int64(6)),
                            traceHeaders: StoredTraceHeaders.decode(statement.text(7))
                        )
                    )
                }
            }
            return events.sorted { $0.id < $1.id }
        }
    }

    func release(_ events: [QueuedEvent]) async throws {
        try await write { connection in
            for event in events {
                try connection.withStatement("UPDATE events SET running = 0 WHERE id = ?1") {
                    $0.bind(1, event.id)
                    _ = try $0.step()
                }
            }
        }
    }

    func finish(_ event: QueuedEvent, _ outcome: DeliveryOutcome) async throws {
        try await write { connection in
            switch outcome {
            case .delivered(let onSuccess):
                try Self.delete(connection, event: event.id)
                try Self.count(connection, event.function, "attempts")
                try Self.count(connection, event.function, "delivered")
                if let onSuccess { try Self.insert(connection, onSuccess) }
            case .retry(let due):
                try Self.reschedule(connection, event: event.id, due: due, attempted: true)
                try Self.count(connection, event.function, "attempts")
                try Self.count(connection, event.function, "retries")
            case .hold(let due, let counted):
                try Self.reschedule(connection, event: event.id, due: due, attempted: false)
                if counted { try Self.count(connection, event.function, "throttles") }
            case .deadLetter(let letter, let onFailure, let countsAttempt):
                try Self.delete(connection, event: event.id)
                if countsAttempt { try Self.count(connection, event.function, "attempts") }
                try Self.addDeadLetter(connection, event: event, letter)
                if let onFailure { try Self.insert(connection, onFailure) }
            }
        }
    }

    func recoverInterrupted() async throws -> Int {
        try await write { connection in
            try connection.execute("UPDATE events SET running = 0, attempts = attempts + 1 WHERE running = 1")
            return Int(sqlite3_changes(connection.handle))
        }
    }

    func nextDue(function: String) throws -> Int64? {
        try read { connection in
            try connection.withStatement("SELECT MIN(due_at) FROM events WHERE function = ?1 AND running = 0") {
                $0.bind(1, function)
                _ = try $0.step()
                return $0.optionalInt64(0)
            }
        }
    }

    func functionsWaiting() throws -> [String] {
        try read { connection in
            try connection.withStatement("SELECT DISTINCT function FROM events WHERE running = 0") { statement in
                var names: [String] = []
                while try statement.step() { names.append(statement.text(0) ?? "") }
                return names
            }
        }
    }

    /// `UPDATE stats`, creating the function's row first.
    private static func count(_ connection: SQLiteConnection, _ function: String, _ column: String) throws {
        try connection.withStatement(
            "INSERT INTO stats (function, \(column)) VALUES (?1, 1) ON CONFLICT (function) DO UPDATE SET \(column) = \(column) + 1"
        ) { statement in
            statement.bind(1, function)
            _ = try statement.step()
        }
    }

    private static func delete(_ connection: SQLiteConnection, event id: Int64) throws {
        try connection.withStatement("DELETE FROM events WHERE id = ?1") {
            $0.bind(1, id)
            _ = try $0.step()
        }
    }

    /// Puts a running event back to wait until `due`, counting an attempt or a throttle.
    private static func reschedule(_ connection: SQLiteConnection, event id: Int64, due: Int64, attempted: Bool) throws
    {
        try connection.withStatement(
            """
            UPDATE events SET running = 0, due_at = ?2, attempts = attempts + ?3, throttles = throttles + ?4
            WHERE id = ?1
            """
        ) { statement in
            statement.bind(1, id)
            statement.bind(2, due)
            statement.bind(3, attempted ? 1 : 0)
            statement.bind(4, attempted ? 0 : 1)
            _ = try statement.step()
        }
    }

    private static func addDeadLetter(
        _ connection: SQLiteConnection,
        event: QueuedEvent,
        _ letter: DeadLetterRecord
    )
        throws
    {
        try connection.withStatement(
            """
            INSERT INTO dead_letters (function, request_id, failed_at, condition, attempts, error_type, record, payload, client_context)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """
        ) { statement in
            statement.bind(1, event.function)
            statement.bind(2, event.requestID)
            statement.bind(3, letter.failedAt)
            statement.bind(4, letter.condition)
            statement.bind(5, Int64(letter.attempts))
            statement.bind(6, optional: letter.errorType)
            statement.bind(7, letter.record)
            statement.bind(8, event.payload)
            statement.bind(9, optional: event.clientContext)
            _ = try statement.step()
        }
    }

    // MARK: - Dead letters

    private static let deadLetterColumns =
        "id, function, request_id, failed_at, condition, attempts, error_type, record FROM dead_letters"

    private static func deadLetter(_ statement: SQLiteConnection.Statement) -> DeadLetter {
        DeadLetter(
            id: statement.int64(0),
            function: statement.text(1) ?? "",
            requestID: statement.text(2) ?? "",
            failedAt: statement.int64(3),
            condition: statement.text(4) ?? "",
            attempts: Int(statement.int64(5)),
            errorType: statement.text(6),
            record: statement.data(7)
        )
    }

    func deadLetters(function: String) throws -> [DeadLetter] {
        try read { connection in
            try connection.withStatement("SELECT \(Self.deadLetterColumns) WHERE function = ?1 ORDER BY id") {
                statement in
                statement.bind(1, function)
                var letters: [DeadLetter] = []
                while try statement.step() { letters.append(Self.deadLetter(statement)) }
                return letters
            }
        }
    }

    func deadLetter(function: String, id: Int64) throws -> DeadLetter? {
        try read { connection in
            try connection.withStatement("SELECT \(Self.deadLetterColumns) WHERE function = ?1 AND id = ?2") {
                statement in
                statement.bind(1, function)
                statement.bind(2, id)
                return try statement.step() ? Self.deadLetter(statement) : nil
            }
        }
    }

    /// Moves dead letters of `function` (all, or the one `id`) back into the queue as new events,
    /// due at once, with no attempts; returns how many.
    func replay(function: String, id: Int64?, at now: Int64) async throws -> Int {
        try await write { connection in
            let filter = id == nil ? "" : " AND id = ?3"
            try connection.withStatement(
                """
                INSERT INTO events (function, request_id, payload, size, client_context, accepted_at, due_at)
                SELECT function, request_id, payload, length(payload), client_context, ?2, ?2 FROM dead_letters
                WHERE function = ?1\(filter) ORDER BY id
                """
            ) { statement in
                statement.bind(1, function)
                statement.bind(2, now)
                if let id { statement.bind(3, id) }
                _ = try statement.step()
            }
            let moved = Int(sqlite3_changes(connection.handle))
            try Self.deleteDeadLetters(connection, function: function, id: id)
            return moved
        }
    }

    /// Deletes dead letters of `function` (all, or the one `id`); returns how many.
    func purge(function: String, id: Int64?) async throws -> Int {
        try await write { connection in
            try Self.deleteDeadLetters(connection, function: function, id: id)
            return Int(sqlite3_changes(connection.handle))
        }
    }

    private static func deleteDeadLetters(_ connection: SQLiteConnection, function: String, id: Int64?) throws {
        try connection.withStatement("DELETE FROM dead_letters WHERE function = ?1\(id == nil ? "" : " AND id = ?2")") {
            statement in
            statement.bind(1, function)
            if let id { statement.bind(2, id) }
            _ = try statement.step()
        }
    }

    // MARK: - Status

    /// Events and payload bytes waiting or running, all functions together.
    func totals() throws -> (events: Int, bytes: Int) {
        try read { connection in
            try connection.withStatement("SELECT events, bytes FROM totals WHERE id = 0") {
                _ = try $0.step()
                return (Int($0.int64(0)), Int($0.int64(1)))
            }
        }
    }

    /// Per function: waiting and running events, the oldest one's age, the counters and dead letters.
    func status(now: Int64) throws -> [QueueFunctionStatus] {
        try read { connection in
            var byName: [String: QueueFunctionStatus] = [:]
            /// Each row's first column is a function name; `fill` copies the rest into its status.
            func merge(_ sql: String, _ fill: (inout QueueFunctionStatus, SQLiteConnection.Statement) -> Void) throws {
                try connection.withStatement(sql) { statement in
                    while try statement.step() {
                        let name = statement.text(0) ?? ""
                        var status = byName[name] ?? QueueFunctionStatus(function: name)
                        fill(&status, statement)
                        byName[name] = status
                    }
                }
            }
            try merge("SELECT function, SUM(running = 0), SUM(running), MIN(accepted_at) FROM events GROUP BY function")
            {
                $0.depth = Int($1.int64(1))
                $0.running = Int($1.int64(2))
                $0.oldestAge = max(0, now - $1.int64(3))
            }
            try merge("SELECT function, delivered, attempts, retries, throttles FROM stats") {
                $0.delivered = Int($1.int64(1))
                $0.attempts = Int($1.int64(2))
                $0.retries = Int($1.int64(3))
                $0.throttles = Int($1.int64(4))
            }
            try merge("SELECT function, COUNT(*) FROM dead_letters GROUP BY function") {
                $0.deadLetters = Int($1.int64(1))
            }
            return byName.values.sorted { $0.function < $1.function }
        }
    }

    // MARK: - Schedules

    func fire(_ run: ScheduledRun) async throws -> ScheduleStep {
        try await write { connection in
            let (step, record, queue) = run.decide(
                recorded: try Self.scheduledRun(connection, function: run.function, expression: run.expression)
            )
            if let queue { try Self.insert(connection, queue) }
            if let record { try Self.setScheduledRun(connection, run, next: record) }
            return step
        }
    }

    func scheduledRun(function: String, expression: String) throws -> Int64? {
        try read { try Self.scheduledRun($0, function: function, expression: expression) }
    }

    /// The next run recorded for `function`'s schedule, if the recorded expression is `expression`.
    private static func scheduledRun(
        _ connection: SQLiteConnection,
        function: String,
        expression: String
    ) throws
        -> Int64?
    {
        try connection.withStatement("SELECT expression, next_at FROM schedules WHERE function = ?1") { statement in
            statement.bind(1, function)
            guard try statement.step(), statement.text(0) == expression else { return nil }
            return statement.int64(1)
        }
    }

    private static func setScheduledRun(_ connection: SQLiteConnection, _ run: ScheduledRun, next: Int64) throws {
        try connection.withStatement(
            """
            INSERT INTO schedules (function, expression, next_at) VALUES (?1, ?2, ?3)
            ON CONFLICT (function) DO UPDATE SET expression = excluded.expression, next_at = excluded.next_at
            """
        ) { statement in
            statement.bind(1, run.function)
            statement.bind(2, run.expression)
            statement.bind(3, next)
            _ = try statement.step()
        }
    }
}
