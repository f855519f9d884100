import CSQLite

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The baseline: the sqlite3 C API with prepared statements on a file with the same schema and
/// pragmas as the store (WAL, `synchronous`, busy timeout), doing the same work per operation.
final class RawSQLite {
    let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    init(path: String, synchronous: String) {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            fatalError("cannot open \(path)")
        }
        self.db = db
        sqlite3_busy_timeout(db, 10_000)
        exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous)")
    }

    deinit {
        statements.values.forEach { sqlite3_finalize($0) }
        sqlite3_close_v2(db)
    }

    func exec(_ sql: String) {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { fatalError(String(cString: sqlite3_errmsg(db))) }
    }

    func statement(_ sql: String) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
            let statement
        else { fatalError(String(cString: sqlite3_errmsg(db))) }
        statements[sql] = statement
        return statement
    }

    func bind(_ statement: OpaquePointer, _ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { _ = sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count), csqlite_transient()) }
    }

    /// A point get: the value copied out, as the store does.
    func get(_ namespace: String, _ key: String) -> Data? {
        let statement = statement(
            "SELECT value, version, expires_at, metadata FROM kv WHERE namespace = ?1 AND key = ?2"
        )
        defer { sqlite3_reset(statement) }
        bind(statement, 1, namespace)
        bind(statement, 2, key)
        guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
        let count = Int(sqlite3_column_bytes(statement, 0))
        return Data(bytes: sqlite3_column_blob(statement, 0), count: count)
    }

    func upsert(_ namespace: String, _ key: String, _ value: Data, version: Int64) {
        let statement = statement(
            """
            INSERT INTO kv (namespace, key, value, version, expires_at, metadata) VALUES (?1, ?2, ?3, ?4, NULL, NULL)
            ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version
            """
        )
        defer { sqlite3_reset(statement) }
        bind(statement, 1, namespace)
        bind(statement, 2, key)
        value.withUnsafeBytes {
            _ = sqlite3_bind_blob(statement, 3, $0.baseAddress, Int32($0.count), csqlite_transient())
        }
        sqlite3_bind_int64(statement, 4, version)
        guard sqlite3_step(statement) == SQLITE_DONE else { fatalError(String(cString: sqlite3_errmsg(db))) }
    }

    /// One durable put: its own transaction.
    func put(_ namespace: String, _ key: String, _ value: Data, version: Int64) {
        exec("BEGIN IMMEDIATE")
        upsert(namespace, key, value, version: version)
        exec("COMMIT")
    }

    /// A prefix page: the same query as the store (live entries only), collected into an array.
    func list(
        _ namespace: String,
        from lower: String,
        below upper: String,
        now: Int64,
        limit: Int
    ) -> [(String, Data, Int64)] {
        let statement = statement(
            """
            SELECT key, value, version, expires_at, metadata FROM kv WHERE namespace = ?1 AND key >= ?2 AND key < ?3
            AND (expires_at IS NULL OR expires_at > ?4) ORDER BY key LIMIT ?5
            """
        )
        defer { sqlite3_reset(statement) }
        bind(statement, 1, namespace)
        bind(statement, 2, lower)
        bind(statement, 3, upper)
        sqlite3_bind_int64(statement, 4, now)
        sqlite3_bind_int64(statement, 5, Int64(limit))
        var rows: [(String, Data, Int64)] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            rows.append(
                (
                    String(cString: sqlite3_column_text(statement, 0)),
                    Data(bytes: sqlite3_column_blob(statement, 1), count: Int(sqlite3_column_bytes(statement, 1))),
                    sqlite3_column_int64(statement, 2)
                )
            )
        }
        return rows
    }

    /// A durable put that also takes a new store-wide version, as the store does.
    func versionedPut(_ namespace: String, _ key: String, _ value: Data) {
        exec("BEGIN IMMEDIATE")
        let next = statement("UPDATE versions SET last = last + 1 WHERE id = 0 RETURNING last")
        guard sqlite3_step(next) == SQLITE_ROW else { fatalError(String(cString: sqlite3_errmsg(db))) }
        let version = sqlite3_column_int64(next, 0)
        sqlite3_reset(next)
        upsert(namespace, key, value, version: version)
        exec("COMMIT")
    }

    /// Read, add one, write: in one `BEGIN IMMEDIATE` transaction, as the store's increment.
    func increment(_ namespace: String, _ key: String) -> Int64 {
        exec("BEGIN IMMEDIATE")
        let value = get(namespace, key).flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        upsert(namespace, key, Data(String(value + 1).utf8), version: value + 1)
        exec("COMMIT")
        return value + 1
    }
}
