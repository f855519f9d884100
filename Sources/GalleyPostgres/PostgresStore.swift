import Galley
import GalleyStore
import Logging
import PostgresNIO
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The key-value store in PostgreSQL, shared by every host that names the same database: the same
/// semantics as ``SQLiteStore`` (``WritePlan`` decides what a write does), on postgres-nio's pool.
///
/// - Every write is one transaction. It first takes a transaction-scoped advisory lock on each key
///   it touches, in one global order, so writers on any host never lose an update, even to a key
///   that does not exist yet (which a row lock could not hold), and never deadlock.
/// - Versions come from one sequence: unique and increasing store-wide, without a hot row.
/// - A write is acknowledged after `COMMIT`, which PostgreSQL makes durable (`synchronous_commit`).
/// - Calls wait as ``PostgresDatabase`` says: never past the invocation's deadline.
public final class PostgresStore: Store, Sendable {
    /// The longest any call waits by default, as SQLite's lock wait.
    public static let callTimeout = PostgresDatabase.callTimeout

    let database: PostgresDatabase
    /// Where the store is, for messages (no password).
    public var location: String { database.location }
    let clock: StoreClock
    var logger: Logger { database.logger }

    /// The store in `database`.
    public init(database: PostgresDatabase) {
        self.database = database
        self.clock = .system
    }

    /// Connects (lazily, on first use) to the database `url` names:
    /// `postgres://user[:password]@host[:port]/database[?sslmode=disable|require][&host=/socket/folder]`.
    ///
    /// - Throws: ``StoreError`` `.unavailable` naming what is wrong with `url`.
    public convenience init(url: String, logger: Logger = Logger(label: "galley.postgres")) throws {
        try self.init(url: url, clock: .system, logger: logger)
    }

    package init(url: String, clock: StoreClock, logger: Logger, timeout: Duration = callTimeout) throws {
        database = try PostgresDatabase(url: url, logger: logger, timeout: timeout)
        self.clock = clock
    }

    public func namespace(_ name: String) throws -> any KeyValueStore {
        try NamespaceStore(namespace: name, backend: self)
    }

    /// Migrates the schema now rather than at the first call: a host calls it at start to say at
    /// once whether its database is usable.
    public func prepare() async throws {
        try await call { _ in }
    }

    func call<Value: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> Value) async throws -> Value
    {
        try await database.call(Self.schema, body)
    }

    /// The store's tables, one list of statements per version.
    static let schema = PostgresDatabase.Schema(
        component: "store",
        steps: [
            [
                """
                CREATE TABLE galley_kv (
                    namespace text NOT NULL,
                    key text COLLATE "C" NOT NULL,
                    value bytea NOT NULL,
                    version bigint NOT NULL,
                    expires_at bigint,
                    metadata text,
                    PRIMARY KEY (namespace, key)
                )
                """,
                "CREATE INDEX galley_kv_expiry ON galley_kv (expires_at) WHERE expires_at IS NOT NULL",
                "CREATE SEQUENCE galley_kv_versions",
            ]
        ]
    )

    /// A key's advisory lock: FNV-1a of its namespace and key, the same on every host.
    static func lockID(namespace: String, key: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in namespace.utf8 + [0] + key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return Int64(bitPattern: hash)
    }

    /// The smallest string greater than every string that starts with `prefix`, in code point order
    /// (PostgreSQL's "C" collation on UTF-8), or `nil` when there is none.
    static func upperBound(ofPrefix prefix: String) -> String? {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            var next = last.value + 1
            if (0xD800...0xDFFF).contains(next) { next = 0xE000 }
            if let scalar = Unicode.Scalar(next) {
                scalars.append(scalar)
                var text = ""
                text.unicodeScalars.append(contentsOf: scalars)
                return text
            }
        }
        return nil
    }
}

extension PostgresStore: StoreBackend {
    package func get(namespace: String, key: String) async throws -> StoreEntry? {
        let now = clock.now()
        let logger = self.logger
        return try await call { client in
            let rows = try await client.query(
                """
                SELECT value, version, expires_at, metadata FROM galley_kv
                WHERE namespace = \(namespace) AND key = \(key)
                """,
                logger: logger
            )
            for try await (value, version, expiresAt, metadata) in rows.decode(
                (ByteBuffer, Int64, Int64?, String?).self
            ) {
                let row = StoredRow(
                    value: Data(buffer: value),
                    version: version,
                    expiresAt: expiresAt,
                    metadata: metadata
                )
                return row.isLive(at: now) ? row.entry(key) : nil
            }
            return nil
        }
    }

    package func list(namespace: String, prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing
    {
        let now = clock.now()
        let logger = self.logger
        let startsAfterCursor = cursor.map { !Array($0.utf8).lexicographicallyPrecedes(Array(prefix.utf8)) } ?? false
        let lower = startsAfterCursor ? cursor! : prefix
        let upper = Self.upperBound(ofPrefix: prefix)
        let comparison = startsAfterCursor ? ">" : ">="
        return try await call { client in
            let query: PostgresQuery = """
                SELECT key, value, version, expires_at, metadata FROM galley_kv
                WHERE namespace = \(namespace) AND key \(unescaped: comparison) \(lower)
                AND (\(upper)::text IS NULL OR key < \(upper))
                AND (expires_at IS NULL OR expires_at > \(now)) ORDER BY key LIMIT \(limit + 1)
                """
            var entries: [StoreEntry] = []
            let rows = try await client.query(query, logger: logger)
            for try await (key, value, version, expiresAt, metadata) in rows.decode(
                (String, ByteBuffer, Int64, Int64?, String?).self
            ) {
                entries.append(
                    StoredRow(value: Data(buffer: value), version: version, expiresAt: expiresAt, metadata: metadata)
                        .entry(key)
                )
            }
            let more = entries.count > limit
            if more { entries.removeLast() }
            return StoreListing(entries: entries, cursor: more ? entries.last?.key : nil)
        }
    }

    package func write(namespace: String, _ operations: [AtomicOperation]) async throws -> WriteOutcome {
        let now = clock.now()
        let logger = self.logger
        let keys = WritePlan.keys(of: operations)
        let locks = Set(keys.map { Self.lockID(namespace: namespace, key: $0) }).sorted()
        return try await call { client in
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(id) FROM unnest(\(locks)::bigint[]) AS id ORDER BY id",
                    logger: logger
                )
                var rows: [String: StoredRow] = [:]
                let found = try await connection.query(
                    """
                    SELECT key, value, version, expires_at, metadata FROM galley_kv
                    WHERE namespace = \(namespace) AND key = ANY(\(keys))
                    """,
                    logger: logger
                )
                for try await (key, value, version, expiresAt, metadata) in found.decode(
                    (String, ByteBuffer, Int64, Int64?, String?).self
                ) {
                    rows[key] = StoredRow(
                        value: Data(buffer: value),
                        version: version,
                        expiresAt: expiresAt,
                        metadata: metadata
                    )
                }
                try WritePlan.check(operations, rows: rows, now: now)
                var version: Int64 = 0
                for try await next in try await connection.query(
                    "SELECT nextval('galley_kv_versions')",
                    logger: logger
                ).decode(Int64.self) {
                    version = next
                }
                let (changes, outcome) = try WritePlan.apply(operations, rows: rows, version: version, now: now)
                for (key, change) in changes {
                    switch change {
                    case .upsert(let row):
                        try await connection.query(
                            """
                            INSERT INTO galley_kv (namespace, key, value, version, expires_at, metadata)
                            VALUES (\(namespace), \(key), \(ByteBuffer(data: row.value)), \(row.version), \(row.expiresAt), \(row.metadata))
                            ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                            expires_at = excluded.expires_at, metadata = excluded.metadata
                            """,
                            logger: logger
                        )
                    case .delete:
                        try await connection.query(
                            "DELETE FROM galley_kv WHERE namespace = \(namespace) AND key = \(key)",
                            logger: logger
                        )
                    }
                }
                return outcome
            }
        }
    }

    public func purgeExpired(limit: Int = 1000) async throws -> Int {
        let now = clock.now()
        let logger = self.logger
        return try await call { client in
            var purged = 0
            for try await _ in try await client.query(
                """
                DELETE FROM galley_kv WHERE ctid IN
                (SELECT ctid FROM galley_kv WHERE expires_at <= \(now) LIMIT \(limit)) RETURNING 1
                """,
                logger: logger
            ).decode(Int.self) {
                purged += 1
            }
            return purged
        }
    }
}
