import CSQLite
import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One sqlite3 connection and its prepared statements. Not thread-safe: the store hands each
/// connection to one caller at a time.
package final class SQLiteConnection: @unchecked Sendable {
    package let handle: OpaquePointer
    package let path: String
    private var statements: [String: OpaquePointer] = [:]

    package init(path: String, readOnly: Bool = false) throws {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(code)"
            sqlite3_close_v2(handle)
            throw StoreError(.unavailable, "cannot open the store file '\(path)': \(message)")
        }
        self.handle = handle
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// Runs SQL with no results (several statements allowed).
    package func execute(_ sql: String) throws {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(code, doing: sql) }
    }

    /// Creates the schema of a new file (`user_version` 0) in one `BEGIN IMMEDIATE` transaction, so
    /// that two processes opening a new file at once create it once; a file of a newer `version`
    /// is refused, naming `file` (`store`, `queue`).
    /// Brings the file from its `user_version` to `steps.count`, in one transaction: `steps[i]`
    /// takes version `i` to `i + 1` (the first creates the schema). A file from a newer Galley is refused.
    package func migrate(steps: [String], file: String) throws {
        try execute("BEGIN IMMEDIATE")
        do {
            let found = Int(try scalarText("PRAGMA user_version") ?? "0") ?? 0
            guard found <= steps.count else {
                throw StoreError(
                    .unavailable,
                    "the \(file) file '\(path)' was written by a newer Galley (schema \(found))"
                )
            }
            for step in steps.dropFirst(found) { try execute(step) }
            if found < steps.count { try execute("PRAGMA user_version = \(steps.count);") }
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    package func migrate(to version: Int, file: String, schema: String) throws {
        try execute("BEGIN IMMEDIATE")
        do {
            let found = Int(try scalarText("PRAGMA user_version") ?? "0") ?? 0
            guard found <= version else {
                throw StoreError(
                    .unavailable,
                    "the \(file) file '\(path)' was written by a newer Galley (schema \(found))"
                )
            }
            if found < version { try execute(schema + "\nPRAGMA user_version = \(version);") }
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The single value of a one-row query, such as a pragma.
    package func scalarText(_ sql: String) throws -> String? {
        var result: String?
        try withStatement(sql) { statement in
            if try statement.step() { result = statement.text(0) }
        }
        return result
    }

    /// A cached prepared statement, reset and cleared after `body`.
    package func withStatement<Result>(_ sql: String, _ body: (Statement) throws -> Result) throws -> Result {
        let pointer: OpaquePointer
        if let cached = statements[sql] {
            pointer = cached
        } else {
            var prepared: OpaquePointer?
            let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
            guard code == SQLITE_OK, let prepared else { throw error(code, doing: sql) }
            statements[sql] = prepared
            pointer = prepared
        }
        defer {
            sqlite3_reset(pointer)
            sqlite3_clear_bindings(pointer)
        }
        return try body(Statement(pointer: pointer, connection: self))
    }

    /// A ``StoreError`` for a failed call: `.corrupt` when the file is not a sound database.
    package func error(_ code: Int32, doing what: String) -> StoreError {
        let message = String(cString: sqlite3_errmsg(handle))
        switch code & 0xFF {
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return StoreError(.corrupt, "the store file '\(path)' is damaged or not a Galley store: \(message)")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL:
            return StoreError(.unavailable, "the store file '\(path)' cannot be used: \(message)")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return StoreError(
                .unavailable,
                "the store file '\(path)' stayed locked by another process (nothing was written): \(message)"
            )
        default:
            return StoreError(.unavailable, "the store file '\(path)' failed (\(message)) running \(what.prefix(60))")
        }
    }

    /// A prepared statement being run.
    package struct Statement {
        package let pointer: OpaquePointer
        package let connection: SQLiteConnection

        package func bind(_ index: Int32, _ text: String) {
            var text = text
            text.withUTF8 { buffer in
                _ = sqlite3_bind_text(pointer, index, buffer.baseAddress, Int32(buffer.count), csqlite_transient())
            }
        }

        package func bind(_ index: Int32, bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { buffer in
                _ = sqlite3_bind_text(pointer, index, buffer.baseAddress, Int32(buffer.count), csqlite_transient())
            }
        }

        package func bind(_ index: Int32, _ data: Data) {
            data.withUnsafeBytes { buffer in
                // A zero-length blob must still be a blob, not NULL.
                _ = sqlite3_bind_blob(
                    pointer,
                    index,
                    buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                    Int32(buffer.count),
                    csqlite_transient()
                )
            }
        }

        package func bind(_ index: Int32, _ value: Int64?) {
            if let value { sqlite3_bind_int64(pointer, index, value) } else { sqlite3_bind_null(pointer, index) }
        }

        package func bind(_ index: Int32, optional text: String?) {
            if let text { bind(index, text) } else { sqlite3_bind_null(pointer, index) }
        }

        /// Steps once; `true` when a row is ready.
        package func step() throws -> Bool {
            let code = sqlite3_step(pointer)
            switch code {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw connection.error(code, doing: String(cString: sqlite3_sql(pointer)))
            }
        }

        package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(pointer, column) == SQLITE_NULL }
        package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(pointer, column) }
        package func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

        package func text(_ column: Int32) -> String? {
            guard let bytes = sqlite3_column_text(pointer, column) else { return nil }
            return String(cString: bytes)
        }

        package func data(_ column: Int32) -> Data {
            let count = Int(sqlite3_column_bytes(pointer, column))
            guard count > 0, let bytes = sqlite3_column_blob(pointer, column) else { return Data() }
            return Data(bytes: bytes, count: count)
        }
    }
}
