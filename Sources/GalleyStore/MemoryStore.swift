import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A store in memory, with the same behaviour as ``SQLiteStore``: for tests, and for hosts that
/// need no persistence.
public final class MemoryStore: Sendable {
    private struct State {
        var rows: [String: [String: StoredRow]] = [:]
        var version: Int64 = 0
    }

    private let state = Mutex(State())
    let clock: StoreClock

    public convenience init() {
        self.init(clock: .system)
    }

    package init(clock: StoreClock) {
        self.clock = clock
    }

    /// The store of one namespace.
    public func namespace(_ name: String) throws -> any KeyValueStore {
        try NamespaceStore(namespace: name, backend: self)
    }
}

extension MemoryStore: StoreBackend {
    package func get(namespace: String, key: String) async throws -> StoreEntry? {
        let now = clock.now()
        return state.withLock { state in
            guard let row = state.rows[namespace]?[key], row.isLive(at: now) else { return nil }
            return row.entry(key)
        }
    }

    package func list(namespace: String, prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing
    {
        let now = clock.now()
        return state.withLock { state in
            let rows = state.rows[namespace] ?? [:]
            // Byte order, as SQLite's BINARY collation sorts.
            let keys = rows.keys.filter { key in
                key.utf8.starts(with: prefix.utf8) && rows[key]!.isLive(at: now)
                    && (cursor.map { Array($0.utf8).lexicographicallyPrecedes(Array(key.utf8)) } ?? true)
            }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            let page = keys.prefix(limit)
            return StoreListing(
                entries: page.map { rows[$0]!.entry($0) },
                cursor: keys.count > limit ? page.last : nil
            )
        }
    }

    package func write(namespace: String, _ operations: [AtomicOperation]) async throws -> WriteOutcome {
        let now = clock.now()
        return try state.withLock { state in
            var namespaceRows = state.rows[namespace] ?? [:]
            var rows: [String: StoredRow] = [:]
            for key in WritePlan.keys(of: operations) { rows[key] = namespaceRows[key] }
            try WritePlan.check(operations, rows: rows, now: now)
            let (changes, outcome) = try WritePlan.apply(operations, rows: rows, version: state.version + 1, now: now)
            for (key, change) in changes {
                switch change {
                case .upsert(let row): namespaceRows[key] = row
                case .delete: namespaceRows.removeValue(forKey: key)
                }
            }
            state.rows[namespace] = namespaceRows
            state.version = outcome.version
            return outcome
        }
    }

    public func purgeExpired(limit: Int = 1000) async throws -> Int {
        let now = clock.now()
        return state.withLock { state in
            var purged = 0
            for (namespace, rows) in state.rows {
                for (key, row) in rows where !row.isLive(at: now) && purged < limit {
                    state.rows[namespace]?.removeValue(forKey: key)
                    purged += 1
                }
            }
            return purged
        }
    }
}
