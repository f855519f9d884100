import Galley
import GalleyStore
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The JSON endpoints behind the console at `/_galley/`, each also a `galley` command:
///
/// | endpoint | command |
/// |---|---|
/// | `GET /_galley/invocations?function=F` | `galley logs F` |
/// | `GET /_galley/store` | the namespaces of runtime.json |
/// | `GET /_galley/store/NS?prefix=&after=&limit=` | `galley kv list`, `galley kv export` |
/// | `DELETE /_galley/store/NS?key=K` | `galley kv delete` |
/// | `GET /_galley/dead-letters/F` | `galley dlq list` |
/// | `POST /_galley/dead-letters/F/replay[?id=N]` | `galley dlq replay` |
/// | `POST /_galley/dead-letters/F/purge[?id=N]` | `galley dlq purge` |
extension HostResponder {
    /// The function's recent invocations, newest first.
    func invocations(query: String) -> Response {
        guard let function = Self.queryValue("function", in: query), !function.isEmpty else {
            return .json(.badRequest, #"{"message":"name a function: /_galley/invocations?function=NAME"}"#)
        }
        let kept = recent?.invocations(of: function) ?? []
        return .json(.ok, #"{"invocations":\#(Array(kept.reversed()).json),"kept":\#(recent != nil)}"#)
    }

    /// Every namespace a function of runtime.json may use: the functions' own and those granted.
    var namespaceNames: [String] {
        let functions = dispatcher.deployment.configuration.functions
        return Set(functions.keys).union(functions.values.flatMap(\.store)).sorted()
    }

    func namespaces() -> Response {
        .json(.ok, #"{"namespaces":\#(namespaceNames.json)}"#)
    }

    /// A page of a namespace's live entries as `galley kv export` writes them, and the cursor of the next.
    func storeKeys(_ rawNamespace: Substring, query: String) async -> Response {
        let limitText = Self.queryValue("limit", in: query) ?? "50"
        guard let limit = Int(limitText), (1...1000).contains(limit) else {
            return Self.message(.badRequest, "limit must be a whole number from 1 to 1000, not '\(limitText)'")
        }
        let prefix = Self.queryValue("prefix", in: query) ?? ""
        let after = Self.queryValue("after", in: query).flatMap { $0.isEmpty ? nil : $0 }
        return await withNamespace(rawNamespace) { store in
            let page = try await store.list(prefix: prefix, after: after, limit: limit)
            let entries = page.entries.map { StoreTransfer.line(for: $0) }.joined(separator: ",")
            let cursor = page.cursor.map(JSONString.quote) ?? "null"
            return .json(.ok, #"{"entries":[\#(entries)],"cursor":\#(cursor)}"#)
        }
    }

    func deleteKey(_ rawNamespace: Substring, query: String) async -> Response {
        guard let key = Self.queryValue("key", in: query), !key.isEmpty else {
            return Self.message(.badRequest, "name the key: DELETE /_galley/store/NAMESPACE?key=KEY")
        }
        return await withNamespace(rawNamespace) { store in
            let deleted = try await store.delete(key, ifVersion: nil)
            return .json(.ok, #"{"deleted":\#(deleted)}"#)
        }
    }

    private func withNamespace(
        _ rawNamespace: Substring,
        _ body: (any KeyValueStore) async throws -> Response
    ) async -> Response {
        let namespace = PercentEncoding.decode(rawNamespace)
        guard namespaceNames.contains(namespace) else {
            return Self.message(
                .notFound,
                "no function of runtime.json uses the namespace '\(namespace)'; namespaces: "
                    + namespaceNames.joined(separator: ", ")
            )
        }
        guard let stores else { return Self.message(.serviceUnavailable, "this host has no store") }
        do {
            return try await body(try stores.store().namespace(namespace))
        } catch let error as StoreError {
            return Self.message(error.code == .invalidKey ? .badRequest : .serviceUnavailable, error.message)
        } catch {
            return Self.message(.serviceUnavailable, "the store failed: \(error)")
        }
    }

    func deadLetters(_ rawFunction: Substring) async -> Response {
        let function = PercentEncoding.decode(rawFunction)
        do {
            let letters = try await events.storage.deadLetters(function: function).map { letter in
                let errorType = letter.errorType.map(JSONString.quote) ?? "null"
                return #"{"id":\#(letter.id),"requestId":\#(JSONString.quote(letter.requestID)),"#
                    + #""failedAt":\#(letter.failedAt),"condition":\#(JSONString.quote(letter.condition)),"#
                    + #""attempts":\#(letter.attempts),"errorType":\#(errorType),"#
                    + #""record":\#(String(decoding: letter.record, as: UTF8.self))}"#
            }
            return .json(.ok, #"{"deadLetters":[\#(letters.joined(separator: ","))]}"#)
        } catch {
            return Self.message(.serviceUnavailable, "cannot read the queue: \(error)")
        }
    }

    func replay(_ rawFunction: Substring, query: String) async -> Response {
        await deadLetterAction(rawFunction, query: query, counted: "replayed") { function, id in
            let moved = try await events.storage.replay(function: function, id: id, at: events.clock.now())
            events.wake()
            return moved
        }
    }

    func purge(_ rawFunction: Substring, query: String) async -> Response {
        await deadLetterAction(rawFunction, query: query, counted: "purged") { function, id in
            try await events.storage.purge(function: function, id: id)
        }
    }

    private func deadLetterAction(
        _ rawFunction: Substring,
        query: String,
        counted: String,
        _ action: (String, Int64?) async throws -> Int
    ) async -> Response {
        let function = PercentEncoding.decode(rawFunction)
        var id: Int64?
        if let text = Self.queryValue("id", in: query) {
            guard let number = Int64(text) else {
                return Self.message(.badRequest, "id must be a number, not '\(text)'")
            }
            id = number
        }
        do {
            return .json(.ok, #"{"\#(counted)":\#(try await action(function, id))}"#)
        } catch {
            return Self.message(.serviceUnavailable, "cannot change the queue: \(error)")
        }
    }

    static func message(_ status: HTTPResponse.Status, _ text: String) -> Response {
        .json(status, #"{"message":\#(JSONString.quote(text))}"#)
    }
}
