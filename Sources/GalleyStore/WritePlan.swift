import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A row as every backend stores it.
package struct StoredRow: Sendable, Equatable {
    package var value: Data
    package var version: Int64
    /// Milliseconds since 1970.
    package var expiresAt: Int64?
    /// Compact JSON with sorted keys.
    package var metadata: String?

    package init(value: Data, version: Int64, expiresAt: Int64?, metadata: String?) {
        self.value = value
        self.version = version
        self.expiresAt = expiresAt
        self.metadata = metadata
    }

    package func isLive(at now: Int64) -> Bool { expiresAt.map { $0 > now } ?? true }

    package func entry(_ key: String) -> StoreEntry {
        StoreEntry(
            key: key,
            value: value,
            version: version,
            expiration: StoredValues.date(expiresAt),
            metadata: StoredValues.metadata(metadata)
        )
    }
}

/// What a batch of ``AtomicOperation``s does to the rows it touches, worked out once for every
/// backend: the backend reads the rows of ``keys(of:)`` inside its transaction (locked against
/// other writers), asks ``check(_:rows:now:)``, takes a new version, asks ``apply(_:rows:version:now:)``,
/// and writes the changes. The semantics live here and nowhere else:
///
/// - every check is made against the rows as they were before the batch;
/// - operations apply in order, each seeing the ones before it (a put then an increment of the
///   same key increments the put value);
/// - every mutation of the batch gets the one new version;
/// - an expired row is absent: a check finds no version, an increment starts from 0, a delete
///   reports no live entry (and removes the row);
/// - an increment keeps the row's expiry and metadata.
package enum WritePlan {
    /// A key's final state after the batch.
    package enum Change: Sendable, Equatable {
        case upsert(StoredRow)
        case delete
    }

    /// The distinct keys of `operations`, in byte order (the order to lock them in).
    package static func keys(of operations: [AtomicOperation]) -> [String] {
        Array(Set(operations.map(\.key))).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Throws ``StoreError`` `.conflict` for the first check that `rows` (as stored, expired ones
    /// included) does not meet.
    package static func check(_ operations: [AtomicOperation], rows: [String: StoredRow], now: Int64) throws {
        for operation in operations {
            guard case .check(let condition) = operation.kind else { continue }
            let current = rows[operation.key].flatMap { $0.isLive(at: now) ? $0.version : nil }
            guard current == condition.version else {
                throw StoreError.conflict(operation.key, condition, found: current)
            }
        }
    }

    /// The batch applied to `rows` with `version`: each touched key's final change, and the outcome.
    package static func apply(
        _ operations: [AtomicOperation],
        rows: [String: StoredRow],
        version: Int64,
        now: Int64
    ) throws -> (changes: [String: Change], outcome: WriteOutcome) {
        var rows = rows
        var changes: [String: Change] = [:]
        var outcome = WriteOutcome(version: version)
        for operation in operations {
            let key = operation.key
            switch operation.kind {
            case .check:
                continue
            case .put(let value, let options):
                let row = StoredRow(
                    value: value,
                    version: version,
                    expiresAt: options.expiration(now: now),
                    metadata: options.encodedMetadata
                )
                rows[key] = row
                changes[key] = .upsert(row)
            case .delete:
                outcome.deleted.append(rows.removeValue(forKey: key)?.isLive(at: now) ?? false)
                changes[key] = .delete
            case .increment(let amount):
                let live = rows[key].flatMap { $0.isLive(at: now) ? $0 : nil }
                let current = try live.map { try StoredValues.integer($0.value, key: key) } ?? 0
                let next = try StoredValues.add(amount, to: current, key: key)
                var row = live ?? StoredRow(value: Data(), version: version, expiresAt: nil, metadata: nil)
                row.value = Data(String(next).utf8)
                row.version = version
                rows[key] = row
                changes[key] = .upsert(row)
                outcome.counters.append(next)
            }
        }
        return (changes, outcome)
    }
}
