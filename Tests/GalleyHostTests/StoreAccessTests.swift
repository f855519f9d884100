import Foundation
import Galley
import GalleyHost
import GalleyStore
import TestSupport
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

/// The case end to end: an inline function whose write waits behind another process's
/// lock past its timeout. The caller hears of it, and the write never lands.
struct TimedOutWriteTests {
    @Test func aWriteHeldUpPastTheTimeoutNeverCommits() async throws {
        let temporary = try TemporaryDirectory(prefix: "galley-store")
        let file = temporary.url.appending(path: "store.sqlite").path
        let opener = StoreOpener.sqlite(file: file, durability: .full)
        _ = try opener.store()
        // Another process's transaction holds the write lock.
        let holder = try SQLiteConnection(path: file)
        try holder.execute("BEGIN IMMEDIATE")

        var function = FunctionConfiguration(handler: "Writer")
        function.isolation = .inline
        function.timeout = 0.3
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["writer": function]),
            catalog: [
                .closure("Writer") { (_: [String: String], context: Context) -> String in
                    try await context.store(namespace: "writer").put("visits", 1)
                    return "written"
                }
            ],
            file: "runtime.json"
        )
        let dispatcher = Dispatcher(
            deployment: deployment,
            logWriter: .discarding,
            stores: StoreAccess.provider(opener)
        )
        let result = try await dispatcher.invoke(Invocation(function: "writer", payload: Data("{}".utf8)))
        #expect(result.isFunctionError)
        // The wait ends at the deadline: the handler sees the StoreError, or the timeout wins the race.
        let answer = String(decoding: result.payload, as: UTF8.self)
        #expect(
            answer.contains("Sandbox.Timedout")
                || answer.contains("stayed locked by another process (nothing was written)"),
            "\(answer)"
        )
        // Once the lock is free, the abandoned write has not landed, now or later.
        try holder.execute("COMMIT")
        await opener.openedStore?.settle()
        try await Task.sleep(for: .milliseconds(100))
        let store = try opener.store().namespace("writer")
        #expect(try await store.get("visits") == nil)
    }
}
