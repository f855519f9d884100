import Foundation
import Galley
import Logging
import Synchronization
import TestSupport
import Testing

@testable import GalleyPostgres
@testable import GalleyStore

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let milliseconds = Mutex<Int64>(1_700_000_000_000)
    func advance(by duration: Duration) {
        milliseconds.withLock {
            $0 += duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
    }
    var storeClock: StoreClock { StoreClock { self.milliseconds.withLock { $0 } } }
}

enum Adapter: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, memory, postgres
    var testDescription: String { rawValue }

    /// The backends the conformance tests run on: PostgreSQL too when it is installed, and always
    /// in CI (where a cluster that cannot start fails them).
    static let conformance: [Adapter] = [.sqlite, .memory] + (PostgresCluster.isWanted ? [.postgres] : [])
}

/// A fresh store of either kind, in its own temporary folder.
final class Fixture {
    let clock = ManualClock()
    let folder: URL
    let store: any Store & StoreBackend

    init(_ adapter: Adapter) async throws {
        folder = FileManager.default.temporaryDirectory.appending(path: "galley-store-\(UUID().uuidString)")
        switch adapter {
        case .sqlite:
            store = try SQLiteStore(
                path: folder.appending(path: "store.sqlite").path,
                durability: .normal,
                clock: clock.storeClock
            )
        case .memory:
            store = MemoryStore(clock: clock.storeClock)
        case .postgres:
            let url = try await PostgresCluster.database()
            var logger = Logger(label: "test")
            logger.logLevel = .error
            // Fifty writers of one key, on a machine busy with the rest of the suite, can wait past
            // the 10 s a call waits in production; correctness is what these tests are about.
            store = try PostgresStore(
                url: url,
                clock: clock.storeClock,
                logger: logger,
                timeout: .seconds(300)
            )
        }
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    func namespace(_ name: String = "app") throws -> any KeyValueStore { try store.namespace(name) }
}

struct KeyValueStoreTests {
    struct User: Codable, Equatable {
        var name: String
        var age: Int
    }

    @Test(arguments: Adapter.conformance)
    func putThenGetReturnsValueVersionAndMetadata(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        let version = try await store.put("k", bytes: Data("v".utf8), ttl: .seconds(60), metadata: ["a": "b"])
        let entry = try #require(try await store.get("k"))
        #expect(entry.value == Data("v".utf8))
        #expect(entry.version == version)
        #expect(entry.metadata == ["a": "b"])
        let expiration = try #require(entry.expiration)
        #expect(abs(expiration.timeIntervalSince1970 - (1_700_000_000 + 60)) < 0.01)
        #expect(try await store.get("missing") == nil)
    }

    @Test(arguments: Adapter.conformance)
    func codableValuesRoundTripAsJSON(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        try await store.put("user:1", User(name: "Ada", age: 36))
        #expect(try await store.get("user:1", as: User.self) == User(name: "Ada", age: 36))
        #expect(try await store.get("user:1")?.value == Data(#"{"age":36,"name":"Ada"}"#.utf8))
    }

    @Test(arguments: Adapter.conformance)
    func versionsIncreaseAcrossKeysAndNamespaces(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let a = try await fixture.namespace("a").put("k", 1)
        let b = try await fixture.namespace("b").put("k", 1)
        let c = try await fixture.namespace("a").put("other", 1)
        #expect(a < b && b < c)
    }

    @Test(arguments: Adapter.conformance)
    func ifAbsentRefusesToOverwrite(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        try await store.put("k", "first", condition: .ifAbsent)
        await #expect {
            try await store.put("k", "second", condition: .ifAbsent)
        } throws: { error in
            (error as? StoreError)?.code == .conflict
                && "\(error)".contains("conflict on 'k': expected it to be absent, but it has version")
        }
        #expect(try await store.get("k", as: String.self) == "first")
    }

    @Test(arguments: Adapter.conformance)
    func ifVersionDetectsAConcurrentChange(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        let first = try await store.put("k", 1)
        let second = try await store.put("k", 2, condition: .ifVersion(first))
        await #expect(throws: StoreError.self) { try await store.put("k", 3, condition: .ifVersion(first)) }
        #expect(try await store.get("k")?.version == second)
        #expect(try await store.get("k", as: Int.self) == 2)
        await #expect(throws: StoreError.self) { try await store.put("absent", 1, condition: .ifVersion(first)) }
        #expect(try await store.get("absent") == nil)
    }

    @Test(arguments: Adapter.conformance)
    func deleteSaysWhetherAnEntryWasThere(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        let version = try await store.put("k", 1)
        await #expect(throws: StoreError.self) { try await store.delete("k", ifVersion: version + 100) }
        #expect(try await store.get("k") != nil)
        #expect(try await store.delete("k", ifVersion: version))
        #expect(try await store.delete("k") == false)
        #expect(try await store.get("k") == nil)
    }

    @Test(arguments: Adapter.conformance)
    func expiredEntriesVanishAtOnceAndArePurged(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        try await store.put("short", 1, ttl: .seconds(10))
        try await store.put("long", 1, ttl: .seconds(100))
        try await store.put("forever", 1)
        fixture.clock.advance(by: .milliseconds(9999))
        #expect(try await store.get("short") != nil)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(try await store.get("short") == nil)
        #expect(try await store.list().keys == ["forever", "long"])
        #expect(try await store.delete("short") == false, "an expired entry counts as absent")
        try await store.put("long", 2, ttl: .seconds(50), condition: .ifVersion(try await store.get("long")!.version))
        fixture.clock.advance(by: .seconds(100))
        try await store.put("long", 3, condition: .ifAbsent)
        try await store.put("gone", 1, ttl: .seconds(1))
        fixture.clock.advance(by: .seconds(2))
        #expect(try await fixture.store.purgeExpired(limit: 100) == 1)
        #expect(try await store.list().keys == ["forever", "long"])
    }

    @Test(arguments: Adapter.conformance)
    func listPagesThroughACursorBoundary(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        for index in 0..<25 { try await store.put("user:\(String(format: "%03d", index))", index) }
        try await store.put("other", 0)
        try await store.put("user", 0)
        var keys: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await store.list(prefix: "user:", after: cursor, limit: 10)
            keys += page.keys
            cursor = page.cursor
            pages += 1
        } while cursor != nil
        #expect(pages == 3)
        #expect(keys == (0..<25).map { "user:\(String(format: "%03d", $0))" })
        let exact = try await store.list(prefix: "user:", after: nil, limit: 25)
        #expect(exact.entries.count == 25 && exact.cursor == nil)
        #expect(try await store.list(prefix: "", after: nil, limit: 1000).keys.count == 27)
        #expect(
            try await store.list(prefix: "user:02", after: nil, limit: 10).keys == [
                "user:020", "user:021", "user:022", "user:023", "user:024",
            ]
        )
    }

    @Test(arguments: Adapter.conformance)
    func atomicAppliesAllOrNothing(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        let balance = try await store.put("balance:a", 100)
        try await store.put("balance:b", 0)
        await #expect(throws: StoreError.self) {
            try await store.atomic([
                .check("balance:a", .ifVersion(balance)),
                .check("lock", .ifVersion(1)),
                try .put("balance:a", 50),
                try .put("balance:b", 50),
            ])
        }
        #expect(try await store.get("balance:a", as: Int.self) == 100)
        #expect(try await store.get("balance:b", as: Int.self) == 0)
        let version = try await store.atomic([
            .check("balance:a", .ifVersion(balance)),
            try .put("balance:a", 50),
            try .put("balance:b", 50),
            .increment("transfers"),
            .delete("lock"),
        ])
        #expect(try await store.get("balance:a")?.version == version)
        #expect(try await store.get("balance:b")?.version == version)
        #expect(try await store.get("transfers", as: Int.self) == 1)
    }

    @Test(arguments: Adapter.conformance)
    func aTTLPastOneHundredYearsIsRefusedNotATrap(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        for ttl: Duration in [.seconds(9_223_372_036_854_775), .seconds(PutOptions.maxTTLSeconds + 1), .zero] {
            let error = await #expect(throws: StoreError.self) { try await store.put("k", "v", ttl: ttl) }
            #expect(error?.code == .invalidKey)
            #expect(
                error?.message.contains("at most 3153600000 seconds (100 years)") == true,
                "\(error?.message ?? "")"
            )
        }
        let atTheLimit = try await store.put("k", "v", ttl: PutOptions.maxTTL)
        #expect(try await store.get("k")?.version == atTheLimit)
        for seconds in [1e300, .infinity, .nan, -1, 0, 9_223_372_000_000_000] {
            #expect(throws: StoreError.self) { try PutOptions.ttl(seconds: seconds) }
        }
        #expect(try PutOptions.ttl(seconds: 1.5) == .milliseconds(1500))
    }

    @Test(arguments: Adapter.conformance)
    func incrementCountsFromZeroAndRefusesNonIntegers(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        #expect(try await store.increment("n") == 1)
        #expect(try await store.increment("n", by: 41) == 42)
        #expect(try await store.increment("n", by: -2) == 40)
        #expect(try await store.get("n", as: Int.self) == 40)
        try await store.put("text", "hello")
        await #expect {
            try await store.increment("text")
        } throws: { ($0 as? StoreError)?.code == .notAnInteger }
        try await store.put("max", Int64.max)
        await #expect(throws: StoreError.self) { try await store.increment("max") }
    }

    @Test(arguments: Adapter.conformance)
    func anIncrementKeepsTheEntrysExpiryAndMetadataAndSeesEarlierOperationsOfItsBatch(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        try await store.put("n", 5, ttl: .seconds(60), metadata: ["owner": "ada"])
        #expect(try await store.increment("n") == 6)
        let entry = try #require(try await store.get("n"))
        #expect(entry.metadata == ["owner": "ada"])
        #expect(entry.expiration != nil)
        // Once expired, the counter starts again from zero, without the old expiry.
        fixture.clock.advance(by: .seconds(61))
        #expect(try await store.increment("n") == 1)
        #expect(try await store.get("n")?.expiration == nil)
        // In one batch, an increment adds to the put before it, and every change gets one version.
        let version = try await store.atomic([
            .put("m", Data("10".utf8)), .increment("m", by: 5), .put("o", Data("1".utf8)),
        ])
        #expect(try await store.get("m", as: Int.self) == 15)
        #expect(try await store.get("m")?.version == version)
        #expect(try await store.get("o")?.version == version)
    }

    @Test(arguments: Adapter.conformance)
    func concurrentIncrementsLoseNothing(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask { for _ in 0..<10 { try await store.increment("hits") } }
            }
            try await group.waitForAll()
        }
        #expect(try await store.get("hits", as: Int.self) == 500)
    }

    @Test(arguments: Adapter.conformance)
    func namespacesAreSeparate(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        try await fixture.namespace("a").put("k", "in a")
        #expect(try await fixture.namespace("b").get("k") == nil)
        #expect(try await fixture.namespace("b").list().keys.isEmpty)
        #expect(try await fixture.namespace("a").get("k", as: String.self) == "in a")
    }

    @Test(arguments: Adapter.conformance)
    func limitsAreEnforcedWithClearErrors(adapter: Adapter) async throws {
        let fixture = try await Fixture(adapter)
        defer { withExtendedLifetime(fixture) {} }
        let store = try fixture.namespace()
        await #expect {
            try await store.put(String(repeating: "k", count: 513), 1)
        } throws: { ($0 as? StoreError)?.code == .invalidKey && "\($0)".contains("keys are at most 512") }
        await #expect(throws: StoreError.self) { try await store.put("", 1) }
        await #expect {
            try await store.put("big", bytes: Data(count: 25 * 1024 * 1024 + 1))
        } throws: { ($0 as? StoreError)?.code == .valueTooLarge && "\($0)".contains("25 MiB") }
        await #expect(throws: StoreError.self) {
            try await store.put("meta", 1, metadata: ["k": String(repeating: "x", count: 1100)])
        }
        await #expect(throws: StoreError.self) { try await store.list(prefix: "", after: nil, limit: 0) }
        #expect(throws: StoreError.self) { try fixture.store.namespace("no spaces") }
        #expect(try await store.list().keys.isEmpty, "nothing was written")
        // Exactly at the limits is fine.
        try await store.put(String(repeating: "k", count: 512), bytes: Data(count: 25 * 1024 * 1024))
    }
}

struct SQLiteStoreTests {
    let temporary: TemporaryDirectory

    init() throws {
        temporary = try TemporaryDirectory(prefix: "galley-sqlite")
    }

    /// A folder not yet made, inside this test's temporary folder.
    func folder() -> URL {
        temporary.url.appending(path: UUID().uuidString)
    }

    @Test func twoOpenersOfOneFileSeeEachOthersWrites() async throws {
        let path = folder().appending(path: "nested/store.sqlite").path
        let first = try SQLiteStore(path: path).namespace("app")
        let second = try SQLiteStore(path: path).namespace("app")
        try await first.put("k", "from first")
        #expect(try await second.get("k", as: String.self) == "from first")
        try await second.increment("n")
        #expect(try await first.increment("n") == 2)
    }

    @Test func fullDurabilityIsInForceOnTheWriter() throws {
        let directory = folder()
        let store = try SQLiteStore(path: directory.appending(path: "s.sqlite").path)
        #expect(store.durability == .full)
        // Read from the writer connection itself: FULL is 2 (SQLite's default in WAL mode is 1).
        #expect(try store.writerSynchronousLevel() == 2)
        let normal = try SQLiteStore(path: directory.appending(path: "n.sqlite").path, durability: .normal)
        #expect(try normal.writerSynchronousLevel() == 1)
    }

    @Test func corruptFileIsAClearErrorNotACrash() throws {
        let directory = folder()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appending(path: "store.sqlite").path
        try Data(repeating: 0x42, count: 8192).write(to: URL(filePath: path))
        #expect {
            try SQLiteStore(path: path)
        } throws: { error in
            (error as? StoreError)?.code == .corrupt && "\(error)".contains(path)
        }
    }

    @Test func unusablePathIsAClearError() throws {
        let directory = folder()
        let path = directory.appending(path: "store.sqlite").path
        // A folder where the file should be.
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect {
            try SQLiteStore(path: path)
        } throws: { error in
            (error as? StoreError)?.code == .unavailable && "\(error)".contains(path)
        }
    }

    @Test func prefixUpperBoundSkipsMaximalBytes() {
        #expect(SQLiteStore.upperBound(ofPrefix: "ab") == Array("ac".utf8))
        #expect(SQLiteStore.upperBound(ofPrefix: "") == nil)
    }
}

/// A write held up behind another process's lock has a definite outcome: it commits before the
/// caller hears back, or it is abandoned and nothing is written, not even later.
struct DefiniteWriteTests {
    let temporary: TemporaryDirectory
    let path: String
    let store: SQLiteStore
    /// Another connection holding the write lock, as another process would.
    let holder: SQLiteConnection

    init() throws {
        temporary = try TemporaryDirectory(prefix: "galley-sqlite")
        path = temporary.url.appending(path: "store.sqlite").path
        store = try SQLiteStore(path: path)
        holder = try SQLiteConnection(path: path)
        try holder.execute("BEGIN IMMEDIATE")
    }

    /// Lets the holder go and checks, after the writer has settled, that `key` was never written.
    func expectNothingWritten(_ key: String, release: Bool = true) async throws {
        if release { try holder.execute("COMMIT") }
        await store.settle()
        try await Task.sleep(for: .milliseconds(50))
        await store.settle()
        #expect(try await store.namespace("app").get(key) == nil, "the abandoned write landed later")
    }

    @Test func theLockWaitEndsAtTheInvocationsDeadline() async throws {
        let started = ContinuousClock.now
        await #expect {
            try await InvocationDeadline.$current.withValue(.now + .milliseconds(200)) {
                try await store.namespace("app").put("k", bytes: Data("1".utf8))
            }
        } throws: { error in
            "\(error)".contains("stayed locked by another process (nothing was written)")
        }
        // Well short of the 10 s busy timeout a write without a deadline waits.
        #expect(ContinuousClock.now - started < SQLiteStore.busyTimeout)
        try await expectNothingWritten("k")
    }

    @Test func aCancelledWriteIsAbandonedNotCommittedLater() async throws {
        let store = self.store
        let write = Task { try await store.namespace("app").put("late", bytes: Data("1".utf8)) }
        try await Task.sleep(for: .milliseconds(50))  // it is now waiting for the lock
        write.cancel()
        // The lock frees at once: a write that ignored its cancellation would now commit.
        try holder.execute("COMMIT")
        await #expect {
            try await write.value
        } throws: { error in
            "\(error)".contains("was abandoned: its invocation ended before it could commit; nothing was written")
        }
        try await expectNothingWritten("late", release: false)
    }

    @Test func aWriteThatGetsTheLockInTimeCommits() async throws {
        let holder = self.holder
        // On a thread of Dispatch's, not the cooperative pool: on a loaded machine the pool's
        // threads may all be busy (this very write waits on one), and the lock would never free.
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(100)) {
            try? holder.execute("COMMIT")
        }
        let version = try await InvocationDeadline.$current.withValue(.now + .seconds(30)) {
            try await store.namespace("app").put("k", bytes: Data("1".utf8))
        }
        #expect(version == 1)
        #expect(try await store.namespace("app").get("k")?.value == Data("1".utf8))
    }
}

/// What several hosts on one PostgreSQL database rely on.
@Suite(.enabled(if: PostgresCluster.isWanted, "PostgreSQL is not installed"))
struct PostgresStoreTests {
    func twoHosts() async throws -> (PostgresStore, PostgresStore) {
        let url = try await PostgresCluster.database()
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return (
            try PostgresStore(url: url, clock: .system, logger: logger, timeout: .seconds(300)),
            try PostgresStore(url: url, clock: .system, logger: logger, timeout: .seconds(300))
        )
    }

    @Test func concurrentIncrementsFromTwoHostsLoseNothing() async throws {
        let (first, second) = try await twoHosts()
        // A counter that does not exist yet: no row to lock, so only the key's own lock keeps it exact.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                let store = try (worker % 2 == 0 ? first : second).namespace("app")
                group.addTask {
                    for _ in 0..<125 { _ = try await store.increment("hits", by: 1) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await first.namespace("app").get("hits", as: Int.self) == 2000)
    }

    @Test func ifVersionFromTwoHostsLetsExactlyOneWriterWin() async throws {
        let (first, second) = try await twoHosts()
        let version = try await first.namespace("app").put("doc", "v0")
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for store in [first, second] {
                let namespace = try store.namespace("app")
                group.addTask {
                    do {
                        try await namespace.put("doc", "mine", condition: .ifVersion(version))
                        return true
                    } catch let error as StoreError where error.code == .conflict {
                        return false
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
    }

    @Test func prefixesEndingInAnyCharacterListOnlyTheirKeys() async throws {
        let (store, _) = try await twoHosts()
        let namespace = try store.namespace("app")
        for key in ["é1", "é2", "ê", "a\u{10FFFF}", "a\u{10FFFF}b", "b", "\u{D7FF}x", "\u{E000}"] {
            try await namespace.put(key, 1)
        }
        #expect(try await namespace.list(prefix: "é").keys == ["é1", "é2"])
        #expect(try await namespace.list(prefix: "a\u{10FFFF}").keys == ["a\u{10FFFF}", "a\u{10FFFF}b"])
        #expect(try await namespace.list(prefix: "\u{D7FF}").keys == ["\u{D7FF}x"])
        // Byte order, as SQLite and the memory store sort.
        #expect(
            try await namespace.list().keys == [
                "a\u{10FFFF}", "a\u{10FFFF}b", "b", "é1", "é2", "ê", "\u{D7FF}x", "\u{E000}",
            ]
        )
    }

    @Test func anUnreachableServerIsAClearErrorAtTheInvocationsDeadline() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        // A port nobody listens on, and a store whose own bound is an hour: only the invocation's
        // deadline can end the call, while postgres-nio goes on retrying the connection.
        let store = try PostgresStore(
            url: "postgres://galley@127.0.0.1:\(PostgresCluster.freePort())/none",
            clock: .system,
            logger: logger,
            timeout: .seconds(3600)
        )
        let started = ContinuousClock.now
        await #expect {
            try await InvocationDeadline.$current.withValue(.now + .seconds(1)) {
                try await store.namespace("app").get("k")
            }
        } throws: { error in
            let error = error as? StoreError
            return error?.code == .unavailable && error?.message.contains("127.0.0.1") == true
                && error?.message.contains("did not answer in time") == true
        }
        // Not a speed bound: a broken deadline would hold the call for the store's hour.
        #expect(ContinuousClock.now - started < .seconds(600))
    }

    @Test func aURLThatIsNotOneIsNamed() {
        #expect { try PostgresStore(url: "mysql://x@y/z") } throws: { "\($0)".contains("postgres://") }
        #expect { try PostgresStore(url: "postgres://host/db") } throws: { "\($0)".contains("no user") }
        #expect { try PostgresStore(url: "postgres://u@h/db?sslmode=maybe") } throws: { "\($0)".contains("sslmode") }
    }
}
