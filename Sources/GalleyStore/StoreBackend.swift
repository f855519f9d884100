import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What an adapter implements: reads, and writes as one atomic batch of operations.
///
/// ``NamespaceStore`` checks keys, values and namespaces before anything reaches a backend, so a
/// backend only stores. Times are milliseconds since 1970, from the backend's clock.
package protocol StoreBackend: Sendable {
    /// The live entry for `key`, or `nil`.
    func get(namespace: String, key: String) async throws -> StoreEntry?

    /// Live entries under `prefix` after `cursor`, in key order, at most `limit`.
    func list(namespace: String, prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing

    /// Applies `operations` in one transaction: every check first, then every mutation with one
    /// new version, or nothing at all.
    func write(namespace: String, _ operations: [AtomicOperation]) async throws -> WriteOutcome

    /// Deletes up to `limit` expired entries; returns how many.
    func purgeExpired(limit: Int) async throws -> Int
}

/// What a write did.
package struct WriteOutcome: Sendable {
    /// The version given to every mutation of the batch.
    package var version: Int64
    /// For each delete, whether a live entry was there, in order.
    package var deleted: [Bool] = []
    /// For each increment, the new value, in order.
    package var counters: [Int64] = []

    package init(version: Int64) {
        self.version = version
    }
}

/// Milliseconds since 1970; tests replace it to move time without sleeping.
package struct StoreClock: Sendable {
    package let now: @Sendable () -> Int64

    package init(now: @escaping @Sendable () -> Int64) {
        self.now = now
    }

    package static let system = StoreClock { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}

extension PutOptions {
    /// The expiry time for a write at `now`, if the entry has a TTL.
    func expiration(now: Int64) -> Int64? {
        if let expiresAt { return Int64((expiresAt.timeIntervalSince1970 * 1000).rounded()) }
        guard let ttl else { return nil }
        let (seconds, attoseconds) = ttl.components
        return now + seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The metadata as stored: compact JSON with sorted keys.
    var encodedMetadata: String? {
        guard let metadata else { return nil }
        return (try? JSONEncoder.sortingKeys().encode(metadata)).map { String(decoding: $0, as: UTF8.self) }
    }
}

enum StoredValues {
    static func metadata(_ text: String?) -> [String: String]? {
        guard let text else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    static func date(_ milliseconds: Int64?) -> Date? {
        milliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// The integer a counter holds: its value as a JSON integer.
    static func integer(_ value: Data, key: String) throws -> Int64 {
        guard let integer = Int64(String(decoding: value, as: UTF8.self).trimmingWhitespace) else {
            throw StoreError(.notAnInteger, "the value of '\(key)' is not an integer, so it cannot be incremented")
        }
        return integer
    }

    static func add(_ amount: Int64, to value: Int64, key: String) throws -> Int64 {
        let (sum, overflow) = value.addingReportingOverflow(amount)
        guard !overflow else { throw StoreError(.notAnInteger, "incrementing '\(key)' by \(amount) overflows Int64") }
        return sum
    }
}

extension String {
    /// The text without surrounding white space.
    package var trimmingWhitespace: Substring {
        var text = self[...]
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
