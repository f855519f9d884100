import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A worker's key-value store: every call is one round trip to the host over the worker's channel
/// (a ``StoreCall`` out, its answer back). The host checks the grants; the worker never sees the
/// store's files.
struct RemoteStores: StoreProvider {
    /// Sends a call's JSON and returns the answer's; one call at a time.
    let send: @Sendable ([UInt8]) async throws -> [UInt8]

    func store(namespace: String) throws -> any KeyValueStore {
        RemoteStore(namespace: namespace, send: send)
    }
}

struct RemoteStore: KeyValueStore {
    let namespace: String
    let send: @Sendable ([UInt8]) async throws -> [UInt8]

    private func call(_ call: StoreCall) async throws -> StoreCall.Answer {
        var call = call
        call.namespace = namespace
        let request = Array(try JSONEncoder().encode(call))
        let answer: StoreCall.Answer
        do {
            answer = try JSONDecoder().decode(StoreCall.Answer.self, from: Data(try await send(request)))
        } catch let error as ChannelError {
            throw StoreError(.unavailable, "the store could not be reached: \(error)")
        } catch {
            throw StoreError(.unavailable, "the host's answer to a store call was not understood: \(error)")
        }
        if let failure = answer.error {
            throw StoreError(StoreError.Code(name: failure.code), failure.message)
        }
        return answer
    }

    func get(_ key: String) async throws -> StoreEntry? {
        try await call(StoreCall(op: "get", key: key)).entry??.storeEntry
    }

    func put(_ key: String, _ value: Data, options: PutOptions) async throws -> Int64 {
        var request = StoreCall(op: "put", key: key, value: value.base64EncodedString())
        request.apply(options)
        return try await call(request).version ?? 0
    }

    func delete(_ key: String, ifVersion version: Int64?) async throws -> Bool {
        try await call(StoreCall(op: "delete", key: key, ifVersion: version)).deleted ?? false
    }

    func list(prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing {
        let answer = try await call(StoreCall(op: "list", prefix: prefix, after: cursor, limit: limit))
        return StoreListing(entries: (answer.entries ?? []).map(\.storeEntry), cursor: answer.cursor)
    }

    func atomic(_ operations: [AtomicOperation]) async throws -> Int64 {
        let steps = operations.map { operation -> StoreCall in
            switch operation.kind {
            case .check(let condition):
                return StoreCall(
                    op: "check",
                    key: operation.key,
                    ifVersion: condition.version,
                    ifAbsent: condition.version == nil
                )
            case .put(let value, let options):
                var step = StoreCall(op: "put", key: operation.key, value: value.base64EncodedString())
                step.apply(options)
                return step
            case .delete:
                return StoreCall(op: "delete", key: operation.key)
            case .increment(let amount):
                return StoreCall(op: "increment", key: operation.key, by: amount)
            }
        }
        return try await call(StoreCall(op: "atomic", operations: steps)).version ?? 0
    }

    func increment(_ key: String, by amount: Int64) async throws -> Int64 {
        try await call(StoreCall(op: "increment", key: key, by: amount)).value ?? 0
    }
}

extension StoreCall {
    init(
        op: String,
        key: String? = nil,
        value: String? = nil,
        ifVersion: Int64? = nil,
        ifAbsent: Bool? = nil,
        prefix: String? = nil,
        after: String? = nil,
        limit: Int? = nil,
        by: Int64? = nil,
        operations: [StoreCall]? = nil
    ) {
        self.init(
            op: op,
            namespace: nil,
            key: key,
            value: value,
            ttl: nil,
            metadata: nil,
            ifVersion: ifVersion,
            ifAbsent: ifAbsent,
            prefix: prefix,
            after: after,
            limit: limit,
            by: by,
            operations: operations
        )
    }

    mutating func apply(_ options: PutOptions) {
        ttl = options.ttl.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        metadata = options.metadata
        ifVersion = options.condition?.version
        ifAbsent = options.condition.map { $0.version == nil }
    }
}
