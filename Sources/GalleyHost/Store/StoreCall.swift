import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One key-value store call from a worker process, as JSON: workers never open the store's files,
/// they ask the host, which checks the namespace grants of the function the worker runs.
///
/// The same JSON goes over a `galley worker`'s private channel and, for `command` runtimes, in the
/// body of `POST /2018-06-01/galley/store` on the environment's own Runtime API endpoint:
///
/// ```json
/// {"op": "get", "namespace": "counter", "key": "visits"}
/// {"op": "put", "namespace": "counter", "key": "visits", "value": "<base64>", "ttl": 60, "ifVersion": 3}
/// {"op": "delete", "key": "visits"}
/// {"op": "list", "prefix": "user:", "after": "user:9", "limit": 100}
/// {"op": "increment", "key": "visits", "by": 1}
/// {"op": "atomic", "operations": [{"op": "check", "key": "a", "ifAbsent": true}, {"op": "put", …}]}
/// ```
/// `namespace` defaults to the function's own. Answers: `{"entry": {…}|null}`, `{"version": n}`,
/// `{"deleted": bool}`, `{"entries": […], "cursor": …}`, `{"value": n}`, or
/// `{"error": {"code": "conflict", "message": "…"}}` with the ``StoreError`` code.
struct StoreCall: Codable, Sendable, Equatable {
    var op: String
    var namespace: String?
    var key: String?
    /// The value's bytes in base64.
    var value: String?
    /// Seconds.
    var ttl: Double?
    var metadata: [String: String]?
    var ifVersion: Int64?
    var ifAbsent: Bool?
    var prefix: String?
    var after: String?
    var limit: Int?
    var by: Int64?
    var operations: [StoreCall]?

    /// What the host answers.
    struct Answer: Codable, Sendable, Equatable {
        struct Entry: Codable, Sendable, Equatable {
            var key: String
            var value: String
            var version: Int64
            /// Milliseconds since the epoch.
            var expiresAt: Int64?
            var metadata: [String: String]?
        }
        struct Failure: Codable, Sendable, Equatable {
            var code: String
            var message: String
        }

        var entry: Entry??
        var version: Int64?
        var deleted: Bool?
        var entries: [Entry]?
        var cursor: String?
        var value: Int64?
        var error: Failure?

        enum CodingKeys: String, CodingKey {
            case entry, version, deleted, entries, cursor, value, error
        }

        init() {}

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // `"entry": null` (no such key) differs from no `entry` field at all.
            if container.contains(.entry) {
                entry = .some(try container.decodeIfPresent(Entry.self, forKey: .entry))
            }
            version = try container.decodeIfPresent(Int64.self, forKey: .version)
            deleted = try container.decodeIfPresent(Bool.self, forKey: .deleted)
            entries = try container.decodeIfPresent([Entry].self, forKey: .entries)
            cursor = try container.decodeIfPresent(String.self, forKey: .cursor)
            value = try container.decodeIfPresent(Int64.self, forKey: .value)
            error = try container.decodeIfPresent(Failure.self, forKey: .error)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            if let entry {
                if let entry {
                    try container.encode(entry, forKey: .entry)
                } else {
                    try container.encodeNil(forKey: .entry)
                }
            }
            try container.encodeIfPresent(version, forKey: .version)
            try container.encodeIfPresent(deleted, forKey: .deleted)
            try container.encodeIfPresent(entries, forKey: .entries)
            try container.encodeIfPresent(cursor, forKey: .cursor)
            try container.encodeIfPresent(value, forKey: .value)
            try container.encodeIfPresent(error, forKey: .error)
        }
    }

    // MARK: - The host's side

    /// Runs `body` (a JSON ``StoreCall``) against `stores`, which checks the grants, and returns the
    /// JSON answer. Never throws: every failure is an answer with an `error`.
    static func answer(_ body: [UInt8], function: String, stores: any StoreProvider) async -> [UInt8] {
        var answer: Answer
        do {
            let call = try JSONDecoder().decode(StoreCall.self, from: Data(body))
            answer = try await call.run(function: function, stores: stores)
        } catch let error as StoreError {
            answer = Answer()
            answer.error = Answer.Failure(code: error.code.description, message: error.message)
        } catch is DecodingError {
            answer = Answer()
            answer.error = Answer.Failure(code: "invalidRequest", message: "the store call is not valid JSON of a call")
        } catch {
            answer = Answer()
            answer.error = Answer.Failure(code: StoreError.Code.unavailable.description, message: "\(error)")
        }
        return Array(
            (try? JSONEncoder().encode(answer)) ?? Data(#"{"error":{"code":"unavailable","message":""}}"#.utf8)
        )
    }

    private func run(function: String, stores: any StoreProvider) async throws -> Answer {
        let store = try stores.store(namespace: namespace ?? function)
        var answer = Answer()
        switch op {
        case "get":
            answer.entry = .some(try await store.get(try required(key, "key")).map(Answer.Entry.init))
        case "put":
            answer.version = try await store.put(try required(key, "key"), try bytes(), options: try options())
        case "delete":
            answer.deleted = try await store.delete(try required(key, "key"), ifVersion: ifVersion)
        case "list":
            let listing = try await store.list(prefix: prefix ?? "", after: after, limit: limit ?? 1000)
            answer.entries = listing.entries.map(Answer.Entry.init)
            answer.cursor = listing.cursor
        case "increment":
            answer.value = try await store.increment(try required(key, "key"), by: by ?? 1)
        case "atomic":
            answer.version = try await store.atomic(try (operations ?? []).map { try $0.atomicOperation() })
        default:
            throw StoreError(.invalidKey, "unknown store operation '\(op)'")
        }
        return answer
    }

    private func atomicOperation() throws -> AtomicOperation {
        let key = try required(key, "key")
        switch op {
        case "check": return .check(key, try condition() ?? .ifAbsent)
        case "put": return .put(key, try bytes(), options: try options())
        case "delete": return .delete(key)
        case "increment": return .increment(key, by: by ?? 1)
        default: throw StoreError(.invalidKey, "unknown atomic operation '\(op)'")
        }
    }

    private func required(_ value: String?, _ field: String) throws -> String {
        guard let value else { throw StoreError(.invalidKey, "the store call '\(op)' needs '\(field)'") }
        return value
    }

    private func bytes() throws -> Data {
        guard let data = Data(base64Encoded: try required(value, "value")) else {
            throw StoreError(.invalidKey, "'value' must be base64")
        }
        return data
    }

    private func condition() throws -> WriteCondition? {
        if let ifVersion { return .ifVersion(ifVersion) }
        return ifAbsent == true ? .ifAbsent : nil
    }

    private func options() throws -> PutOptions {
        PutOptions(
            ttl: try ttl.map { try PutOptions.ttl(seconds: $0) },
            metadata: metadata,
            condition: try condition()
        )
    }
}

extension StoreCall.Answer.Entry {
    init(_ entry: StoreEntry) {
        self.init(
            key: entry.key,
            value: entry.value.base64EncodedString(),
            version: entry.version,
            expiresAt: entry.expiration.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) },
            metadata: entry.metadata
        )
    }

    var storeEntry: StoreEntry {
        StoreEntry(
            key: key,
            value: Data(base64Encoded: value) ?? Data(),
            version: version,
            expiration: expiresAt.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            metadata: metadata
        )
    }
}
