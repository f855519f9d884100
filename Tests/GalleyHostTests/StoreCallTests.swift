import Foundation
import Galley
import GalleyStore
import Testing

@testable import GalleyHost

/// A worker's store (``RemoteStore``) against the host's answers (``StoreCall``), wired directly:
/// every store feature survives the trip, errors keep their codes, and the grants hold.
struct StoreCallTests {
    let stores: StoreAccess
    let remote: RemoteStores

    init() {
        let memory = MemoryStore()
        let access = StoreAccess(function: "app", granted: ["shared"], opener: StoreOpener { memory })
        stores = access
        remote = RemoteStores { call in await StoreCall.answer(call, function: "app", stores: access) }
    }

    @Test func everyOperationCrossesWithItsMeaning() async throws {
        let store = try remote.store(namespace: "app")
        let first = try await store.put(
            "user:1",
            Data("a".utf8),
            options: PutOptions(ttl: .seconds(60), metadata: ["m": "1"])
        )
        let entry = try #require(try await store.get("user:1"))
        #expect(entry.value == Data("a".utf8))
        #expect(entry.version == first)
        #expect(entry.metadata == ["m": "1"])
        #expect(entry.expiration != nil)
        #expect(try await store.get("missing") == nil)
        // Versions and conditions.
        let second = try await store.put("user:1", Data("b".utf8), options: PutOptions(condition: .ifVersion(first)))
        await #expect {
            try await store.put("user:1", Data("c".utf8), options: PutOptions(condition: .ifVersion(first)))
        } throws: { ($0 as? StoreError)?.code == .conflict }
        await #expect {
            try await store.put("user:1", Data("c".utf8), options: PutOptions(condition: .ifAbsent))
        } throws: { ($0 as? StoreError)?.code == .conflict }
        await #expect {
            try await store.delete("user:1", ifVersion: first)
        } throws: { ($0 as? StoreError)?.code == .conflict }
        // Lists with cursors.
        for index in 2...5 { try await store.put("user:\(index)", index) }
        let page = try await store.list(prefix: "user:", after: nil, limit: 2)
        #expect(page.keys == ["user:1", "user:2"])
        let rest = try await store.list(prefix: "user:", after: page.cursor, limit: 10)
        #expect(rest.keys == ["user:3", "user:4", "user:5"])
        #expect(rest.cursor == nil)
        // Increments and atomic batches.
        #expect(try await store.increment("n", by: 5) == 5)
        #expect(try await store.increment("n", by: -2) == 3)
        let batch = try await store.atomic([
            .check("user:1", .ifVersion(second)), .increment("n", by: 1), .delete("user:2"),
        ])
        #expect(batch > second)
        #expect(try await store.get("n", as: Int64.self) == 4)
        #expect(try await store.get("user:2") == nil)
        await #expect {
            try await store.atomic([.check("user:1", .ifAbsent), .increment("n", by: 1)])
        } throws: { ($0 as? StoreError)?.code == .conflict }
        #expect(try await store.get("n", as: Int64.self) == 4, "a failed batch changes nothing")
        #expect(try await store.delete("user:1", ifVersion: nil))
        // What the worker wrote, the host's own store holds.
        #expect(try await stores.store(namespace: "app").get("user:3", as: Int.self) == 3)
    }

    @Test func grantsAreTheHostsToCheck() async throws {
        await #expect {
            _ = try await remote.store(namespace: "other").get("k")
        } throws: { error in
            (error as? StoreError)?.code == .accessDenied
                && "\(error)".contains("may not use the store namespace 'other'")
        }
        try await remote.store(namespace: "shared").put("k", 1)
        #expect(try await stores.store(namespace: "shared").get("k", as: Int.self) == 1)
    }

    @Test func aMalformedCallIsAnErrorAnswerNotACrash() async throws {
        for body in [
            "not json", #"{"op": "explode"}"#, #"{"op": "put", "key": "k", "value": "%%%"}"#, #"{"op": "get"}"#,
        ] {
            let answer = await StoreCall.answer(Array(body.utf8), function: "app", stores: stores)
            let decoded = try JSONDecoder().decode(StoreCall.Answer.self, from: Data(answer))
            #expect(decoded.error != nil, "\(body)")
        }
    }
}
