#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A key-value store scoped to one namespace: what `context.store` returns.
///
/// Every write gets a new version, unique and increasing across the whole store file, so a
/// version read earlier tells whether the key changed since (optimistic concurrency, as Deno
/// KV's versionstamps). Keys are at most 512 bytes of UTF-8 and values at most 25 MiB, as in
/// Cloudflare Workers KV. Expired entries are invisible at once.
///
/// Errors are ``StoreError`` values: `.conflict` when a condition does not hold, `.invalidKey`
/// and `.valueTooLarge` for input past the limits, `.corrupt` and `.unavailable` for the file.
public protocol KeyValueStore: Sendable {
    /// The namespace every key of this store lives in.
    var namespace: String { get }

    /// The entry for `key`, or `nil` when there is none or it has expired.
    func get(_ key: String) async throws -> StoreEntry?

    /// Writes `value` under `key`, returning the new version.
    ///
    /// - Throws: ``StoreError`` `.conflict` when `options.condition` does not hold; nothing is written then.
    @discardableResult
    func put(_ key: String, _ value: Data, options: PutOptions) async throws -> Int64

    /// Deletes `key`; returns whether an entry was there.
    ///
    /// - Throws: ``StoreError`` `.conflict` when `version` is given and the entry's version differs.
    @discardableResult
    func delete(_ key: String, ifVersion version: Int64?) async throws -> Bool

    /// Up to `limit` live entries whose keys start with `prefix`, in key order, after `cursor`.
    func list(prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing

    /// Applies every operation, or none when any check fails; returns the version of the writes.
    ///
    /// - Throws: ``StoreError`` `.conflict` naming the first check that failed.
    @discardableResult
    func atomic(_ operations: [AtomicOperation]) async throws -> Int64

    /// Adds `amount` to the integer stored at `key` (absent counts as 0) and returns the new value.
    ///
    /// Atomic across processes: concurrent increments never lose an update.
    @discardableResult
    func increment(_ key: String, by amount: Int64) async throws -> Int64
}

extension KeyValueStore {
    /// The value of `key` decoded from JSON, or `nil` when there is none.
    public func get<Value: Decodable>(_ key: String, as type: Value.Type) async throws -> Value? {
        guard let entry = try await get(key) else { return nil }
        return try entry.decode(as: Value.self)
    }

    /// Writes `value` encoded as JSON (sorted keys), returning the new version.
    @discardableResult
    public func put<Value: Encodable>(
        _ key: String,
        _ value: Value,
        ttl: Duration? = nil,
        metadata: [String: String]? = nil,
        condition: WriteCondition? = nil
    ) async throws -> Int64 {
        let data = try DirectJSONEncoder.sortingKeys.encode(value)
        return try await put(key, data, options: PutOptions(ttl: ttl, metadata: metadata, condition: condition))
    }

    /// Writes raw bytes, returning the new version.
    @discardableResult
    public func put(
        _ key: String,
        bytes: Data,
        ttl: Duration? = nil,
        metadata: [String: String]? = nil,
        condition: WriteCondition? = nil
    ) async throws -> Int64 {
        try await put(key, bytes, options: PutOptions(ttl: ttl, metadata: metadata, condition: condition))
    }

    /// Deletes `key` whatever its version; returns whether an entry was there.
    @discardableResult
    public func delete(_ key: String) async throws -> Bool {
        try await delete(key, ifVersion: nil)
    }

    /// The first page of keys under `prefix`.
    public func list(prefix: String = "", limit: Int = 1000) async throws -> StoreListing {
        try await list(prefix: prefix, after: nil, limit: limit)
    }

    /// Adds one to the integer at `key` and returns the new value.
    @discardableResult
    public func increment(_ key: String) async throws -> Int64 {
        try await increment(key, by: 1)
    }
}

/// One stored value with its version, expiry and metadata.
public struct StoreEntry: Sendable, Equatable {
    public var key: String
    public var value: Data
    /// The version of the write that stored this value.
    public var version: Int64
    /// When the entry stops being visible, if it has a TTL.
    public var expiration: Date?
    public var metadata: [String: String]?

    public init(key: String, value: Data, version: Int64, expiration: Date? = nil, metadata: [String: String]? = nil) {
        self.key = key
        self.value = value
        self.version = version
        self.expiration = expiration
        self.metadata = metadata
    }

    /// The value decoded from JSON.
    public func decode<Value: Decodable>(as type: Value.Type) throws -> Value {
        try JSONDecoder().decode(Value.self, from: value)
    }
}

/// A page of entries from ``KeyValueStore/list(prefix:after:limit:)``.
public struct StoreListing: Sendable, Equatable {
    public var entries: [StoreEntry]
    /// Pass as `after` to get the next page; `nil` on the last page.
    public var cursor: String?

    public init(entries: [StoreEntry], cursor: String?) {
        self.entries = entries
        self.cursor = cursor
    }

    public var keys: [String] { entries.map(\.key) }
}

/// How ``KeyValueStore/put(_:_:options:)`` writes.
public struct PutOptions: Sendable, Equatable {
    /// How long the entry stays visible; `nil` keeps it until it is overwritten or deleted.
    public var ttl: Duration?
    /// Up to 1 KiB of JSON-encoded string pairs stored beside the value.
    public var metadata: [String: String]?
    /// A condition the current entry must meet, or the write fails with `.conflict`.
    public var condition: WriteCondition?
    /// When the entry stops being visible, as a time rather than a TTL (to the millisecond): what
    /// `galley kv import` keeps from an export. Not together with `ttl`.
    public var expiresAt: Date?

    public init(
        ttl: Duration? = nil,
        metadata: [String: String]? = nil,
        condition: WriteCondition? = nil,
        expiresAt: Date? = nil
    ) {
        self.ttl = ttl
        self.metadata = metadata
        self.condition = condition
        self.expiresAt = expiresAt
    }

    /// The longest TTL a store accepts: 100 years.
    public static let maxTTLSeconds: Int64 = 3_153_600_000
    public static let maxTTL: Duration = .seconds(maxTTLSeconds)

    /// A TTL of `seconds` (fractions allowed) from user input, checked before any arithmetic.
    ///
    /// - Throws: ``StoreError`` `.invalidKey` naming the limit when `seconds` is not a finite number
    ///   more than 0 and at most ``maxTTLSeconds``.
    public static func ttl(seconds: Double, of field: String = "the TTL") throws(StoreError) -> Duration {
        guard seconds.isFinite, seconds > 0, seconds <= Double(maxTTLSeconds) else {
            throw StoreError(
                .invalidKey,
                "\(field) must be a number of seconds more than 0 and at most \(maxTTLSeconds) (100 years), found \(seconds)"
            )
        }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }
}

/// A condition on the current entry of a key.
public struct WriteCondition: Sendable, Hashable, CustomStringConvertible {
    /// The version the entry must have, or `nil` when there must be no (live) entry.
    public var version: Int64?

    /// The key must have no live entry.
    public static let ifAbsent = WriteCondition(version: nil)

    /// The entry must still have this version.
    public static func ifVersion(_ version: Int64) -> WriteCondition { WriteCondition(version: version) }

    public var description: String { version.map { "ifVersion(\($0))" } ?? "ifAbsent" }
}

/// One step of ``KeyValueStore/atomic(_:)``.
public struct AtomicOperation: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        case check(WriteCondition)
        case put(Data, PutOptions)
        case delete
        case increment(Int64)
    }

    public var key: String
    package var kind: Kind

    /// Fails the whole operation unless `key` meets `condition`.
    public static func check(_ key: String, _ condition: WriteCondition) -> Self {
        Self(key: key, kind: .check(condition))
    }
    /// Writes raw bytes.
    public static func put(_ key: String, _ value: Data, options: PutOptions = PutOptions()) -> Self {
        Self(key: key, kind: .put(value, options))
    }
    /// Writes a value encoded as JSON.
    public static func put<Value: Encodable>(_ key: String, _ value: Value, ttl: Duration? = nil) throws -> Self {
        Self(key: key, kind: .put(try DirectJSONEncoder.sortingKeys.encode(value), PutOptions(ttl: ttl)))
    }
    /// Deletes the key if it is there.
    public static func delete(_ key: String) -> Self { Self(key: key, kind: .delete) }
    /// Adds `amount` to the integer at `key`.
    public static func increment(_ key: String, by amount: Int64 = 1) -> Self {
        Self(key: key, kind: .increment(amount))
    }
}

/// An error from a ``KeyValueStore``.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, in a form a program can switch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A code by its name, as it crosses a process boundary.
        package init(name: String) {
            self.name = name
        }
        public static let conflict = Code(name: "conflict")
        public static let invalidKey = Code(name: "invalidKey")
        public static let valueTooLarge = Code(name: "valueTooLarge")
        public static let notAnInteger = Code(name: "notAnInteger")
        public static let accessDenied = Code(name: "accessDenied")
        public static let corrupt = Code(name: "corrupt")
        public static let unavailable = Code(name: "unavailable")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// The lower-level error behind this one, if any.
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
