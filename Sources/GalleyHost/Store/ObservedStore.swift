import Galley
import Instrumentation
import Tracing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A namespace of the store as a function uses it, with each call counted and timed in the host's
/// metrics (`galley_store_operations_total`, `galley_store_operation_duration_seconds`) and made a
/// span (`store <operation>`) of the invocation that made it.
struct ObservedStore: KeyValueStore {
    let base: any KeyValueStore
    let namespace: String
    let metrics: HostMetrics?
    /// `nil`: the tracer bootstrapped in `InstrumentationSystem`.
    let tracer: (any Tracer)?

    func get(_ key: String) async throws -> StoreEntry? {
        try await observe(.get) { try await base.get(key) }
    }

    func put(_ key: String, _ value: Data, options: PutOptions) async throws -> Int64 {
        try await observe(.put) { try await base.put(key, value, options: options) }
    }

    func delete(_ key: String, ifVersion version: Int64?) async throws -> Bool {
        try await observe(.delete) { try await base.delete(key, ifVersion: version) }
    }

    func list(prefix: String, after cursor: String?, limit: Int) async throws -> StoreListing {
        try await observe(.list) { try await base.list(prefix: prefix, after: cursor, limit: limit) }
    }

    func atomic(_ operations: [AtomicOperation]) async throws -> Int64 {
        try await observe(.atomic) { try await base.atomic(operations) }
    }

    func increment(_ key: String, by amount: Int64) async throws -> Int64 {
        try await observe(.increment) { try await base.increment(key, by: amount) }
    }

    enum Operation: String, CaseIterable, Sendable {
        case get, put, delete, list, atomic, increment

        var spanName: String {
            switch self {
            case .get: "store get"
            case .put: "store put"
            case .delete: "store delete"
            case .list: "store list"
            case .atomic: "store atomic"
            case .increment: "store increment"
            }
        }
    }

    private func observe<Value: Sendable>(
        _ operation: Operation,
        _ call: () async throws -> Value
    ) async throws -> Value {
        let started = ContinuousClock.now
        let namespace = self.namespace
        do {
            let value = try await (tracer ?? InstrumentationSystem.tracer).withSpan(
                operation.spanName,
                ofKind: .client
            ) { span in
                span.attributes["db.system"] = "galley"
                span.attributes["db.namespace"] = namespace
                return try await call()
            }
            metrics?.recordStoreCall(operation, namespace: namespace, outcome: "ok", took: .now - started)
            return value
        } catch {
            let outcome = (error as? StoreError)?.code.description ?? "error"
            metrics?.recordStoreCall(operation, namespace: namespace, outcome: outcome, took: .now - started)
            throw error
        }
    }
}
