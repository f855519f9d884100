import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A ``KeyValueStore`` for one namespace of a backend: checks every key, value and option
/// against the limits, then forwards to the backend.
package struct NamespaceStore: KeyValueStore {
    /// Keys are at most 512 bytes, as in Workers KV.
    package static let maxKeyBytes = 512
    /// Values are at most 25 MiB, as in Workers KV.
    package static let maxValueBytes = 25 * 1024 * 1024
    /// Metadata is at most 1 KiB once encoded, as in Workers KV.
    package static let maxMetadataBytes = 1024
    /// A page lists at most 1,000 keys, as in Workers KV.
    package static let maxListLimit = 1000

    package let namespace: String
    let backend: any StoreBackend

    package init(namespace: String, backend: any StoreBackend) throws {
        try Self.checkNamespace(namespace)
        self.namespace = namespace
        self.backend = backend
    }

    package func get(_ key: String) async throws -> StoreEntry? {
        try Self.check(key: key)
        return try await backend.get(namespace: namespace, key: key)
    }

    @discardableResult
    package func put(_ key: String, _ value: Data, options: PutOptions) async throws -> Int64 {
        var operations: [AtomicOperation] = []
        if let condition = options.condition { operations.append(.check(key, condition)) }
        operations.append(.put(key, value, options: options))
        return try await atomic(operations)
    }

    @discardableResult
    package func delete(_ key: String, ifVersion version: Int64?) async throws -> Bool {
        var operations: [AtomicOperation] = []
        if let version { operations.append(.check(key, .ifVersion(version))) }
        operations.append(.delete(key))
        try Self.check(operations)
        return try await backend.write(namespace: namespace, operations).deleted.first ?? false
    }

    package func list(prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing {
        guard (1...Self.maxListLimit).contains(limit) else {
            throw StoreError(.invalidKey, "the list limit must be between 1 and \(Self.maxListLimit), found \(limit)")
        }
        guard prefix.utf8.count <= Self.maxKeyBytes else {
            throw StoreError(.invalidKey, "the prefix is longer than \(Self.maxKeyBytes) bytes")
        }
        return try await backend.list(namespace: namespace, prefix: prefix, after: cursor, limit: limit)
    }

    @discardableResult
    package func atomic(_ operations: [AtomicOperation]) async throws -> Int64 {
        try Self.check(operations)
        return try await backend.write(namespace: namespace, operations).version
    }

    @discardableResult
    package func increment(_ key: String, by amount: Int64) async throws -> Int64 {
        let operations: [AtomicOperation] = [.increment(key, by: amount)]
        try Self.check(operations)
        return try await backend.write(namespace: namespace, operations).counters[0]
    }

    // MARK: - Checks

    static func checkNamespace(_ namespace: String) throws {
        let valid =
            !namespace.isEmpty && namespace.utf8.count <= 64
            && namespace.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
            }
        guard valid else {
            throw StoreError(
                .invalidKey,
                "'\(namespace)' is not a valid namespace (letters, digits, '-' and '_', at most 64)"
            )
        }
    }

    static func check(key: String) throws {
        guard !key.isEmpty else { throw StoreError(.invalidKey, "keys cannot be empty") }
        guard key.utf8.count <= maxKeyBytes else {
            throw StoreError(
                .invalidKey,
                "the key '\(key.prefix(40))…' is \(key.utf8.count) bytes; keys are at most \(maxKeyBytes)"
            )
        }
        guard !key.utf8.contains(0) else { throw StoreError(.invalidKey, "keys cannot contain NUL bytes") }
    }

    static func check(_ operations: [AtomicOperation]) throws {
        guard !operations.isEmpty else { throw StoreError(.invalidKey, "an atomic operation needs at least one step") }
        for operation in operations {
            try check(key: operation.key)
            guard case .put(let value, let options) = operation.kind else { continue }
            guard value.count <= maxValueBytes else {
                throw StoreError(
                    .valueTooLarge,
                    "the value of '\(operation.key)' is \(value.count) bytes; values are at most \(maxValueBytes) (25 MiB)"
                )
            }
            if options.ttl != nil, options.expiresAt != nil {
                throw StoreError(.invalidKey, "'\(operation.key)' has both a TTL and an expiry time; give one")
            }
            if let ttl = options.ttl, ttl <= .zero || ttl > PutOptions.maxTTL {
                throw StoreError(
                    .invalidKey,
                    "the TTL of '\(operation.key)' must be more than 0 and at most \(PutOptions.maxTTLSeconds) seconds (100 years), found \(ttl)"
                )
            }
            if let metadata = options.encodedMetadata, metadata.utf8.count > maxMetadataBytes {
                throw StoreError(
                    .valueTooLarge,
                    "the metadata of '\(operation.key)' is \(metadata.utf8.count) bytes; metadata is at most \(maxMetadataBytes)"
                )
            }
        }
    }
}

extension StoreError {
    static func conflict(_ key: String, _ condition: WriteCondition, found version: Int64?) -> StoreError {
        let found = version.map { "it has version \($0)" } ?? "it does not exist"
        let expected = condition.version.map { "to have version \($0)" } ?? "to be absent"
        return StoreError(.conflict, "conflict on '\(key)': expected it \(expected), but \(found)")
    }
}
