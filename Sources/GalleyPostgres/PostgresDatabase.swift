import Galley
import GalleyHost
import GalleyStore
import Logging
import PostgresNIO
import Synchronization

/// One PostgreSQL database and postgres-nio's pool of connections to it, shared by the store and
/// the queue of a host.
///
/// - Every call waits at most ``timeout``, and never past the invocation's deadline: a lost
///   connection or a full pool is a clear ``StoreError`` `.unavailable`, never a hang.
/// - Each part of Galley's schema (`store`, `queue`) is versioned in `galley_schema` and migrated
///   on its first use, under an advisory lock, so hosts starting together migrate once.
public final class PostgresDatabase: Sendable {
    /// The longest any call waits by default, as SQLite's lock wait.
    public static let callTimeout: Duration = .seconds(10)

    let client: PostgresClient
    /// Where the database is, for messages (no password).
    public let location: String
    /// The longest a call waits.
    let timeout: Duration
    let logger: Logger
    private let runner: Task<Void, Never>
    private let migrations = Mutex<[String: Migration]>([:])

    /// A flag set once, never cleared: a call got past its schema check.
    final class Flag: Sendable {
        let value = Atomic(false)
    }

    /// Connects (lazily, on first use) to the database `url` names:
    /// `postgres://user[:password]@host[:port]/database[?sslmode=disable|require][&host=/socket/folder]`.
    ///
    /// - Throws: ``StoreError`` `.unavailable` naming what is wrong with `url`.
    public init(url: String, logger: Logger = Logger(label: "galley.postgres"), timeout: Duration = callTimeout) throws
    {
        let target = try PostgresURL(url)
        var configuration = target.configuration
        configuration.options.maximumConnections = 32
        configuration.options.connectTimeout = .seconds(5)
        // A call the host has given up on must not keep its connection, or the locks it holds or
        // waits for: PostgreSQL itself ends a statement running past twice the call's timeout and
        // a transaction left idle as long. Otherwise, after an outage under load, statements queued
        // behind one stuck lock can hold every connection of the pool and no call ever gets one.
        let limit = String(Milliseconds.whole(timeout) * 2)
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", limit), ("idle_in_transaction_session_timeout", limit),
        ]
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        location = target.description
        self.timeout = timeout
        self.logger = logger
        runner = Task { [client] in await client.run() }
    }

    deinit {
        runner.cancel()
    }

    /// A part of Galley's schema: its name in `galley_schema` and the steps that build it, one per
    /// version.
    struct Schema: Sendable {
        let component: String
        let steps: [[String]]
        var version: Int { steps.count }
    }

    // MARK: - Calls

    /// Runs `body` once `schema` is ready, within ``timeout`` and the invocation's deadline.
    ///
    /// At the deadline (or when the calling task is cancelled) the caller gets `.unavailable` at
    /// once and the call is cancelled behind it: a write not yet committed is rolled back, one whose
    /// `COMMIT` was already on its way may still land, as with any database across a network.
    func call<Value: Sendable>(
        _ schema: Schema,
        _ body: @escaping @Sendable (PostgresClient) async throws -> Value
    ) async throws -> Value {
        let limit = ContinuousClock.now + timeout
        let deadline = Swift.min(limit, InvocationDeadline.current ?? limit)
        let location = self.location
        let client = self.client
        let ready = readyTask(schema)
        let answer = Answer<Value>()
        let migrated = Flag()
        let work = Task {
            do {
                try await ready.value
                migrated.value.store(true, ordering: .releasing)
                try Task.checkCancellation()
                answer.resume(with: .success(try await body(client)))
            } catch {
                answer.resume(with: .failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(until: deadline)
            let waitedFor =
                migrated.value.load(ordering: .acquiring)
                ? "the server may be gone or the pool full"
                : "waiting for the \(schema.component) schema to be checked"
            answer.resume(
                with: .failure(
                    StoreError(.unavailable, "PostgreSQL at \(location) did not answer in time (\(waitedFor))")
                )
            )
        }
        do {
            let value = try await withTaskCancellationHandler {
                try await answer.value
            } onCancel: {
                answer.resume(
                    with: .failure(StoreError(.unavailable, "the call to PostgreSQL at \(location) was cancelled"))
                )
            }
            timer.cancel()
            return value
        } catch let error as StoreError {
            work.cancel()
            timer.cancel()
            throw error
        } catch let error as PostgresTransactionError {
            timer.cancel()
            // A write's own refusal (a conflict, a counter that is not one) is the caller's answer.
            if let refusal = error.closureError as? StoreError { throw refusal }
            let cause = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError
            throw StoreError(.unavailable, "PostgreSQL at \(location): \(Self.describe(cause ?? error))", cause: nil)
        } catch {
            timer.cancel()
            throw StoreError(.unavailable, "PostgreSQL at \(location): \(Self.describe(error))", cause: nil)
        }
    }

    /// The first of a call's answer, its timeout and its cancellation; later ones are dropped.
    final class Answer<Value: Sendable>: Sendable {
        private let state = Mutex<(result: Result<Value, any Error>?, waiter: CheckedContinuation<Value, any Error>?)>(
            (nil, nil)
        )

        func resume(with result: Result<Value, any Error>) {
            let waiter = state.withLock { state -> CheckedContinuation<Value, any Error>? in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: result)
        }

        var value: Value {
            get async throws {
                try await withCheckedThrowingContinuation { continuation in
                    let ready = state.withLock { state -> Result<Value, any Error>? in
                        if let result = state.result { return result }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            }
        }
    }

    /// One attempt at checking (and migrating) a part of the schema.
    final class Migration: Sendable {
        enum State: UInt8, AtomicRepresentable {
            case running, succeeded
            /// The next call makes another attempt.
            case failed
        }

        /// Where the attempt stands; the attempt sets it as it ends.
        final class Progress: Sendable {
            let state = Atomic(State.running)
        }

        let task: Task<Void, any Error>
        let started = ContinuousClock.now
        let progress = Progress()

        /// Starts `work` as the attempt.
        init(_ work: @escaping @Sendable () async throws -> Void) {
            let progress = self.progress
            task = Task {
                do {
                    try await work()
                    progress.state.store(.succeeded, ordering: .releasing)
                } catch {
                    progress.state.store(.failed, ordering: .releasing)
                    throw error
                }
            }
        }
    }

    /// How long a schema check may go unfinished before the next call gives up on it and starts
    /// another: six calls' time (a minute by default), far more than checking an up-to-date schema
    /// takes. One that outlives an outage (its connection lost in a way the pool did not notice,
    /// or its lock never granted) must not keep every later call of its part waiting.
    var migrationPatience: Duration { timeout * 6 }

    /// `schema`'s migration, started once; one that failed, or ran past ``migrationPatience``, is
    /// tried again by the next call.
    private func readyTask(_ schema: Schema) -> Task<Void, any Error> {
        migrations.withLock { migrations in
            if let current = migrations[schema.component] {
                switch current.progress.state.load(ordering: .acquiring) {
                case .succeeded:
                    return current.task
                case .running where ContinuousClock.now - current.started <= migrationPatience:
                    return current.task
                case .running:
                    logger.warning(
                        "PostgreSQL at \(location): the \(schema.component) schema check has not finished in \(migrationPatience); starting another"
                    )
                    current.task.cancel()
                case .failed:
                    break
                }
            }
            let (client, logger) = (self.client, self.logger)
            let made = Migration { try await Self.migrate(schema, client, logger: logger) }
            migrations[schema.component] = made
            return made.task
        }
    }

    /// What a PostgreSQL error says, without the query's bound values.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + code
            }
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }

    static func migrate(_ schema: Schema, _ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { connection in
            // A migration may take longer than a call: the calls waiting for it give up, it does not.
            try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
            // One migration at a time across every host.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS galley_schema (component text PRIMARY KEY, version integer NOT NULL)",
                logger: logger
            )
            var found = 0
            for try await version in try await connection.query(
                "SELECT version FROM galley_schema WHERE component = \(schema.component)",
                logger: logger
            ).decode(Int.self) {
                found = version
            }
            guard found <= schema.version else {
                throw StoreError(
                    .unavailable,
                    "the database's \(schema.component) schema is version \(found), newer than this Galley's \(schema.version)"
                )
            }
            for step in schema.steps.dropFirst(found) {
                for statement in step {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
            try await connection.query(
                """
                INSERT INTO galley_schema (component, version) VALUES (\(schema.component), \(schema.version))
                ON CONFLICT (component) DO UPDATE SET version = excluded.version
                """,
                logger: logger
            )
        }
    }

    /// The advisory lock every migration of Galley's schema takes ("galley" in ASCII).
    static let migrationLock: Int64 = 0x67_616c_6c65_79
}

/// The databases a process uses, one ``PostgresDatabase`` (one pool) per URL.
public final class PostgresDatabases: Sendable {
    private let opened = Mutex<[String: PostgresDatabase]>([:])

    public init() {}

    /// The database at `url`, connected once.
    public func database(_ url: String) throws -> PostgresDatabase {
        try opened.withLock { opened in
            if let database = opened[url] { return database }
            // Its connection log goes to stderr, never into a command's output.
            var logger = Logger(label: "galley.postgres") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = .warning
            let database = try PostgresDatabase(url: url, logger: logger)
            opened[url] = database
            return database
        }
    }
}
