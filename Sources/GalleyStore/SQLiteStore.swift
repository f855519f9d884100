import CSQLite
import Dispatch
import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The key-value store in one SQLite file, shared safely by every process that opens it.
///
/// The file is in WAL mode. Every write is one `BEGIN IMMEDIATE` transaction, so writers from
/// several processes queue on SQLite's lock (waiting up to ``busyTimeout``) and never lose an
/// update. Within a process, writes run one at a time on a queue of their own, so a slow fsync
/// never blocks Swift's cooperative threads; reads run at once on a pool of connections.
///
/// Durability: with ``Durability/full`` (the default) a write is acknowledged only after the WAL
/// is fsynced, so it survives a crash of the process, of the machine, or a power loss. With
/// ``Durability/normal`` it survives any crash of the process (`kill -9` included), but the last
/// writes before a power loss or kernel crash may be lost; the file stays consistent either way.
public final class SQLiteStore: Store {
    /// How hard a write is pushed to disk before it is acknowledged.
    public struct Durability: Hashable, Sendable, CustomStringConvertible {
        let pragma: String
        let level: Int
        /// `synchronous = FULL`: acknowledged writes survive power loss.
        public static let full = Durability(pragma: "FULL", level: 2)
        /// `synchronous = NORMAL`: acknowledged writes survive process crashes.
        public static let normal = Durability(pragma: "NORMAL", level: 1)
        public var description: String { pragma.lowercased() }
    }

    /// The schema this version of Galley writes; a newer file is refused.
    static let schemaVersion = 1
    /// How long a write waits for another process's write lock before failing.
    public static let busyTimeout: Duration = .seconds(10)

    /// The store file.
    public let path: String
    public let durability: Durability
    let clock: StoreClock
    private let writer: SQLiteConnection
    private let writeQueue: DispatchQueue
    private let readers = Mutex<[SQLiteConnection]>([])

    /// Opens (creating it and its folder if needed) the store file at `path`.
    ///
    /// - Throws: ``StoreError`` `.corrupt` when the file is not a sound SQLite database,
    ///   `.unavailable` when it cannot be opened or created.
    public convenience init(path: String, durability: Durability = .full) throws {
        try self.init(path: path, durability: durability, clock: .system)
    }

    package init(path: String, durability: Durability, clock: StoreClock) throws {
        self.path = path
        self.durability = durability
        self.clock = clock
        let folder = URL(filePath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.unavailable, "cannot create the store folder '\(folder.path)': \(error)", cause: nil)
        }
        writer = try SQLiteConnection(path: path)
        writeQueue = DispatchQueue(label: "galley.store.writer")
        try Self.configure(writer, durability: durability)
        try Self.migrate(writer)
    }

    public func namespace(_ name: String) throws -> any KeyValueStore {
        try NamespaceStore(namespace: name, backend: self)
    }

    /// `PRAGMA integrity_check`: `"ok"` for a sound file, else SQLite's findings.
    public func integrityCheck() throws -> String {
        try withReader { try $0.scalarText("PRAGMA integrity_check") ?? "" }
    }

    /// `PRAGMA synchronous` as the writer connection has it (`2` for full, `1` for normal): what
    /// decides whether an acknowledged write survives a power loss, read back rather than assumed.
    package func writerSynchronousLevel() throws -> Int {
        try writeQueue.sync { Int(try writer.scalarText("PRAGMA synchronous") ?? "") ?? -1 }
    }

    // MARK: - Connections

    /// Makes `connection` wait up to ``busyTimeout`` for another process's lock: every
    /// connection's setting outside a write's own ``BusyWait``.
    static func waitWhenBusy(_ connection: SQLiteConnection) {
        sqlite3_busy_timeout(connection.handle, Int32(busyTimeout.components.seconds * 1000))
    }

    static func configure(_ connection: SQLiteConnection, durability: Durability) throws {
        waitWhenBusy(connection)
        let mode = try connection.scalarText("PRAGMA journal_mode = WAL")
        guard mode?.lowercased() == "wal" else {
            throw StoreError(
                .unavailable,
                "the store file '\(connection.path)' cannot use WAL mode (got \(mode ?? "nothing"))"
            )
        }
        try connection.execute("PRAGMA synchronous = \(durability.pragma)")
        // Read it back: a setting that did not take would silently weaken durability.
        guard try connection.scalarText("PRAGMA synchronous") == String(durability.level) else {
            throw StoreError(
                .unavailable,
                "the store file '\(connection.path)' refused synchronous = \(durability.pragma)"
            )
        }
    }

    static func migrate(_ connection: SQLiteConnection) throws {
        try connection.migrate(
            to: schemaVersion,
            file: "store",
            schema: """
                    CREATE TABLE IF NOT EXISTS kv (
                        namespace TEXT NOT NULL,
                        key TEXT NOT NULL,
                        value BLOB NOT NULL,
                        version INTEGER NOT NULL,
                        expires_at INTEGER,
                        metadata TEXT,
                        PRIMARY KEY (namespace, key)
                    ) WITHOUT ROWID;
                    CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
                    CREATE TABLE IF NOT EXISTS versions (id INTEGER PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL);
                    INSERT OR IGNORE INTO versions (id, last) VALUES (0, 0);
                """
        )
    }

    /// Runs `body` with a reader connection from the pool.
    private func withReader<Value>(_ body: (SQLiteConnection) throws -> Value) throws -> Value {
        let connection = try readers.withLock { $0.popLast() } ?? openReader()
        defer { readers.withLock { if $0.count < 8 { $0.append(connection) } } }
        return try body(connection)
    }

    private func openReader() throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path)
        Self.waitWhenBusy(connection)
        return connection
    }

    /// Runs `body` on the writer connection, on the write queue, inside `BEGIN IMMEDIATE … COMMIT`.
    ///
    /// The outcome is definite: the write commits before this returns, or is abandoned and nothing
    /// is written. It is abandoned when the calling task is cancelled (its invocation timed out)
    /// before the commit, and the wait for another process's lock ends at ``busyTimeout`` or at the
    /// invocation's deadline (``InvocationDeadline``), whichever comes first.
    private func transaction<Value: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws -> Value
    ) async throws -> Value {
        let writer = self.writer
        let path = self.path
        let limit = ContinuousClock.now + Self.busyTimeout
        let wait = BusyWait(until: Swift.min(limit, InvocationDeadline.current ?? limit))
        guard !Task.isCancelled else { throw BusyWait.abandoned(path) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                writeQueue.async {
                    continuation.resume(
                        with: Result {
                            guard !wait.isCancelled else { throw BusyWait.abandoned(path) }
                            wait.install(on: writer)
                            defer { Self.waitWhenBusy(writer) }
                            do {
                                try writer.execute("BEGIN IMMEDIATE")
                            } catch  where wait.isCancelled {
                                throw BusyWait.abandoned(path)
                            }
                            do {
                                let result = try body(writer)
                                guard !wait.isCancelled else { throw BusyWait.abandoned(path) }
                                try writer.execute("COMMIT")
                                return result
                            } catch {
                                try? writer.execute("ROLLBACK")
                                throw error
                            }
                        }
                    )
                }
            }
        } onCancel: {
            wait.cancel()
        }
    }

    /// Returns once the write in progress (if any) has committed or been abandoned.
    public func settle() async {
        await withCheckedContinuation { continuation in writeQueue.async { continuation.resume() } }
    }
}

// MARK: - Reads and writes

extension SQLiteStore: StoreBackend {
    static let selectEntry = "SELECT value, version, expires_at, metadata FROM kv WHERE namespace = ?1 AND key = ?2"

    package func get(namespace: String, key: String) async throws -> StoreEntry? {
        let now = clock.now()
        return try withReader { connection in
            try connection.withStatement(Self.selectEntry) { statement in
                statement.bind(1, namespace)
                statement.bind(2, key)
                guard try statement.step() else { return nil }
                let expiresAt = statement.optionalInt64(2)
                if let expiresAt, expiresAt <= now { return nil }
                return StoreEntry(
                    key: key,
                    value: statement.data(0),
                    version: statement.int64(1),
                    expiration: StoredValues.date(expiresAt),
                    metadata: StoredValues.metadata(statement.text(3))
                )
            }
        }
    }

    package func list(namespace: String, prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing
    {
        let now = clock.now()
        // Start after the cursor when it is inside the prefix's range, else at the prefix.
        let startsAfterCursor = cursor.map { !Array($0.utf8).lexicographicallyPrecedes(Array(prefix.utf8)) } ?? false
        let lower = startsAfterCursor ? cursor! : prefix
        let upper = Self.upperBound(ofPrefix: prefix)
        let sql =
            "SELECT key, value, version, expires_at, metadata FROM kv WHERE namespace = ?1 AND key \(startsAfterCursor ? ">" : ">=") ?2"
            + (upper == nil ? "" : " AND key < ?3")
            + " AND (expires_at IS NULL OR expires_at > ?4) ORDER BY key LIMIT ?5"
        return try withReader { connection in
            try connection.withStatement(sql) { statement in
                statement.bind(1, namespace)
                statement.bind(2, lower)
                if let upper { statement.bind(3, bytes: upper) }
                statement.bind(4, now)
                statement.bind(5, Int64(limit + 1))
                var entries: [StoreEntry] = []
                while try statement.step() {
                    entries.append(
                        StoreEntry(
                            key: statement.text(0) ?? "",
                            value: statement.data(1),
                            version: statement.int64(2),
                            expiration: StoredValues.date(statement.optionalInt64(3)),
                            metadata: StoredValues.metadata(statement.text(4))
                        )
                    )
                }
                let more = entries.count > limit
                if more { entries.removeLast() }
                return StoreListing(entries: entries, cursor: more ? entries.last?.key : nil)
            }
        }
    }

    /// The smallest byte string greater than every key starting with `prefix`, or `nil` for none.
    static func upperBound(ofPrefix prefix: String) -> [UInt8]? {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last, last == 0xFF { bytes.removeLast() }
        guard !bytes.isEmpty else { return nil }
        bytes[bytes.count - 1] += 1
        return bytes
    }

    package func write(namespace: String, _ operations: [AtomicOperation]) async throws -> WriteOutcome {
        let now = clock.now()
        return try await transaction { connection in
            var rows: [String: StoredRow] = [:]
            for key in WritePlan.keys(of: operations) {
                rows[key] = try connection.withStatement(Self.selectEntry) { statement in
                    statement.bind(1, namespace)
                    statement.bind(2, key)
                    guard try statement.step() else { return nil }
                    return StoredRow(
                        value: statement.data(0),
                        version: statement.int64(1),
                        expiresAt: statement.optionalInt64(2),
                        metadata: statement.text(3)
                    )
                }
            }
            try WritePlan.check(operations, rows: rows, now: now)
            let version = try connection.withStatement(
                "UPDATE versions SET last = last + 1 WHERE id = 0 RETURNING last"
            ) {
                _ = try $0.step()
                return $0.int64(0)
            }
            let (changes, outcome) = try WritePlan.apply(operations, rows: rows, version: version, now: now)
            for (key, change) in changes {
                switch change {
                case .upsert(let row):
                    try Self.upsert(connection, namespace, key, row)
                case .delete:
                    try connection.withStatement("DELETE FROM kv WHERE namespace = ?1 AND key = ?2") { statement in
                        statement.bind(1, namespace)
                        statement.bind(2, key)
                        _ = try statement.step()
                    }
                }
            }
            return outcome
        }
    }

    private static func upsert(
        _ connection: SQLiteConnection,
        _ namespace: String,
        _ key: String,
        _ row: StoredRow
    ) throws {
        try connection.withStatement(
            """
            INSERT INTO kv (namespace, key, value, version, expires_at, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version,
            expires_at = excluded.expires_at, metadata = excluded.metadata
            """
        ) { statement in
            statement.bind(1, namespace)
            statement.bind(2, key)
            statement.bind(3, row.value)
            statement.bind(4, row.version)
            statement.bind(5, row.expiresAt)
            statement.bind(6, optional: row.metadata)
            _ = try statement.step()
        }
    }

    public func purgeExpired(limit: Int = 1000) async throws -> Int {
        let now = clock.now()
        return try await transaction { connection in
            try connection.withStatement(
                """
                DELETE FROM kv WHERE (namespace, key) IN
                (SELECT namespace, key FROM kv WHERE expires_at <= ?1 LIMIT ?2)
                """
            ) { statement in
                statement.bind(1, now)
                statement.bind(2, Int64(limit))
                _ = try statement.step()
                return Int(sqlite3_changes(connection.handle))
            }
        }
    }
}

/// One write's wait for SQLite's lock: until a time, or until its task is cancelled. Installed
/// as the writer connection's busy handler for the length of the transaction.
final class BusyWait: Sendable {
    let until: ContinuousClock.Instant
    private let cancelled = Mutex(false)

    init(until: ContinuousClock.Instant) {
        self.until = until
    }

    var isCancelled: Bool { cancelled.withLock { $0 } }
    func cancel() { cancelled.withLock { $0 = true } }

    static func abandoned(_ path: String) -> StoreError {
        StoreError(
            .unavailable,
            "the write to '\(path)' was abandoned: its invocation ended before it could commit; nothing was written"
        )
    }

    /// Makes `connection` wait for a lock in steps of 1 to 10 ms, giving up (SQLITE_BUSY, the
    /// write abandoned) at `until` or on cancellation. Valid while `self` lives: the caller holds it.
    func install(on connection: SQLiteConnection) {
        sqlite3_busy_handler(
            connection.handle,
            { context, attempt in
                let wait = Unmanaged<BusyWait>.fromOpaque(context!).takeUnretainedValue()
                guard !wait.isCancelled, ContinuousClock.now < wait.until else { return 0 }
                sqlite3_sleep(Swift.min(10, 1 + attempt))
                return 1
            },
            Unmanaged.passUnretained(self).toOpaque()
        )
    }
}
