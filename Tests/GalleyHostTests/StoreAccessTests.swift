import Galley
import GalleyHost
import GalleyStore
import Testing

struct StoreAccessTests {
    let opener: StoreOpener = {
        let store = MemoryStore()
        return StoreOpener { store }
    }()

    @Test func aFunctionUsesItsOwnNamespace() async throws {
        let access = StoreAccess(function: "counter", granted: [], opener: opener)
        try await access.store(namespace: "counter").put("k", 1)
        #expect(try await access.store(namespace: "counter").get("k", as: Int.self) == 1)
    }

    @Test func anotherNamespaceIsRefusedUnlessGranted() async throws {
        try await StoreAccess(function: "writer", granted: [], opener: opener).store(namespace: "writer").put(
            "secret",
            1
        )
        let reader = StoreAccess(function: "reader", granted: [], opener: opener)
        #expect {
            try reader.store(namespace: "writer")
        } throws: { error in
            (error as? StoreError)?.code == .accessDenied
                && "\(error)".contains("grant it in runtime.json: functions.reader.store")
        }
        let granted = StoreAccess(function: "reader", granted: ["writer"], opener: opener)
        #expect(try await granted.store(namespace: "writer").get("secret", as: Int.self) == 1)
    }

    @Test func theStoreIsOpenedOnFirstUseOnly() throws {
        let opener = StoreOpener { MemoryStore() }
        _ = StoreAccess(function: "f", granted: [], opener: opener)
        #expect(opener.openedStore == nil)
        _ = try StoreAccess(function: "f", granted: [], opener: opener).store(namespace: "f")
        #expect(opener.openedStore != nil)
    }
}
