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
    struct Row {
        var value: Data
        var version: Int64
        var expiresAt: Int64?
        var metadata: String?
    }

    private struct State {
        var rows: [String: [String: Row]] = [:]
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
            var rows = state.rows[namespace] ?? [:]
            for operation in operations {
                guard case .check(let condition) = operation.kind else { continue }
                let current = rows[operation.key].flatMap { $0.isLive(at: now) ? $0.version : nil }
                guard current == condition.version else {
                    throw StoreError.conflict(operation.key, condition, found: current)
                }
            }
            var outcome = WriteOutcome(version: state.version + 1)
            for operation in operations {
                let key = operation.key
                switch operation.kind {
                case .check:
                    continue
                case .put(let value, let options):
                    rows[key] = Row(
                        value: value,
                        version: outcome.version,
                        expiresAt: options.expiration(now: now),
                        metadata: options.encodedMetadata
                    )
                case .delete:
                    outcome.deleted.append(rows.removeValue(forKey: key)?.isLive(at: now) ?? false)
                case .increment(let amount):
                    var row = rows[key].flatMap { $0.isLive(at: now) ? $0 : nil }
                    let current = try row.map { try StoredValues.integer($0.value, key: key) } ?? 0
                    let next = try StoredValues.add(amount, to: current, key: key)
                    row = row ?? Row(value: Data(), version: 0, expiresAt: nil, metadata: nil)
                    row!.value = Data(String(next).utf8)
                    row!.version = outcome.version
                    rows[key] = row
                    outcome.counters.append(next)
                }
            }
            state.rows[namespace] = rows
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

extension MemoryStore.Row {
    func isLive(at now: Int64) -> Bool { expiresAt.map { $0 > now } ?? true }

    func entry(_ key: String) -> StoreEntry {
        StoreEntry(
            key: key,
            value: value,
            version: version,
            expiration: StoredValues.date(expiresAt),
            metadata: StoredValues.metadata(metadata)
        )
    }
}
