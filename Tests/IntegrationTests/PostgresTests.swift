import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Several `galley serve` hosts on one PostgreSQL database, and moving a store between backends,
/// against the test run's throw-away cluster.
@Suite(.serialized, .enabled(if: PostgresCluster.isWanted, "PostgreSQL is not installed"))
struct PostgresTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    /// A runtime.json of `counter` whose queue and lock live in `folder` (one per host).
    func config(_ name: String, storage: String, postgres: String? = nil) throws -> String {
        let store = postgres.map { #", "postgres": "\#($0)""# } ?? ""
        return try directory.write(
            name,
            """
            {
              "storage": { "path": "\(storage)"\(store) },
              "functions": { "counter": { "handler": "Counter", "concurrency": 64, "routes": ["POST /count/{name}"] } }
            }
            """
        )
    }

    @Test func twoHostsCountOneCounterExactly() async throws {
        let url = try await PostgresCluster.database()
        // One host names the database in runtime.json, the other through the environment.
        let first = try await ServerProcess(config: config("one.json", storage: "one", postgres: url))
        let second = try await ServerProcess(
            config: config("two.json", storage: "two"),
            environment: ["GALLEY_STORAGE_URL": url]
        )
        // Behind one nginx upstream, as in production (each host directly where nginx is missing).
        let hosts = [first, second].map { $0.address.replacing("http://", with: "") }
        let nginx = Tools.isCI || Tools.usable("nginx") ? try await Nginx(in: directory, servers: hosts) : nil
        defer { nginx.map { stop($0.process) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<16 {
                let base = nginx?.base ?? (client % 2 == 0 ? first : second).address
                group.addTask {
                    for _ in 0..<125 {
                        let answer = try await EnvironmentTests.send(
                            {
                                var request = URLRequest(url: URL(string: "\(base)/count/visits")!)
                                request.httpMethod = "POST"
                                return request
                            }()
                        )
                        #expect(answer.status == 200, "\(answer.body)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let read = try await runGalley(
            ["kv", "get", "counter", "visits", "--config", config("three.json", storage: "three", postgres: url)]
        )
        #expect(read.out.trimmingCharacters(in: .whitespacesAndNewlines) == "2000", "\(read.err)")
        // nginx spread the calls over both hosts.
        if nginx != nil {
            for server in [first, second] {
                #expect(server.stderr.contains("REPORT RequestId"), "a host got no call: \(server.stderr.suffix(500))")
            }
        }
        // Neither host wrote a store file of its own.
        #expect(!FileManager.default.fileExists(atPath: directory.path("one/store.sqlite")))
        #expect(!FileManager.default.fileExists(atPath: directory.path("two/store.sqlite")))
        for server in [first, second] {
            server.signal(SIGTERM)
            #expect(try await server.waitForExit() == 0, "\(server.stderr.suffix(2000))")
        }
    }

    /// The counts of every key of `counter` in `url`'s store.
    func counts(_ url: String) async throws -> [String: Int] {
        let exported = try await runGalley([
            "kv", "export", "counter", "--config", config("export.json", storage: "export", postgres: url),
        ])
        var counts: [String: Int] = [:]
        for line in exported.out.split(separator: "\n") {
            let entry = try ConsoleTests.json(String(line))
            if let key = entry["key"] as? String { counts[key] = entry["value"] as? Int }
        }
        return counts
    }

    @Test func twoHostsDeliverEveryAcceptedEventWhileOneIsKilledAndRestarted() async throws {
        let url = try await PostgresCluster.database()
        /// Leases of 2 s: the killed host's events are taken over 2 s after it dies.
        func host(_ name: String) throws -> String {
            try directory.write(
                "\(name).json",
                """
                {
                  "storage": { "path": "\(name)", "postgres": "\(url)" },
                  "queue": { "lease": 2 },
                  "functions": { "counter": { "handler": "Counter", "concurrency": 64 } }
                }
                """
            )
        }
        let (one, two) = (try host("one"), try host("two"))
        let first = try await ServerProcess(config: one)
        let second = try await ServerProcess(config: two)
        let names = (0..<2000).map { "e\($0)" }
        // Half the callers on each host; the first is killed with SIGKILL after 500 acknowledgements.
        async let toFirst = QueueTests.stream(Array(names[..<1000]), to: first, senders: 8, killAfter: 500)
        async let toSecond = QueueTests.stream(Array(names[1000...]), to: second, senders: 8)
        let (acknowledgedByFirst, acknowledgedBySecond) = await (toFirst, toSecond)
        _ = try await first.waitForExit()
        #expect(acknowledgedByFirst.count >= 500)
        #expect(acknowledgedBySecond.count == 1000)
        // What the dead host did not acknowledge its callers send to the other, as behind nginx.
        let rest = names[..<1000].filter { !acknowledgedByFirst.contains($0) }
        #expect(await QueueTests.stream(rest, to: second, senders: 8).count == rest.count)
        // The first comes back, with nothing of its own to recover: its events were taken over.
        let restarted = try await ServerProcess(config: one)
        // The queue is shared: empty on one host is empty on all.
        try await QueueTests.waitUntilEmpty(second)
        // Only what the killed host was delivering (its share of concurrency, 32) or had accepted
        // without answering (8 callers) may be delivered twice.
        QueueTests.expectDelivered(
            names,
            counts: try await counts(url),
            duplicatesAtMost: 40,
            "two hosts, one killed after \(acknowledgedByFirst.count) of 2000"
        )
        let status = try await QueueTests.queueStatus(restarted)
        let counter = (status["functions"] as? [String: Any])?["counter"] as? [String: Any]
        #expect(counter?["waiting"] as? Int == 0)
        #expect((counter?["delivered"] as? Int ?? 0) >= 2000, "\(status)")
        for server in [second, restarted] { server.signal(SIGTERM) }
        #expect(try await second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
        #expect(try await restarted.waitForExit() == 0, "\(restarted.stderr.suffix(2000))")
    }

    @Test func kvExportFromSQLiteImportsIntoPostgreSQLAndBack() async throws {
        let url = try await PostgresCluster.database()
        let local = try config("local.json", storage: "local")
        let shared = try config("shared.json", storage: "shared", postgres: url)
        let lines = """
            {"key":"a","value":{"n":1},"metadata":{"owner":"ada"}}
            {"key":"b","valueBase64":"AAEC/w=="}
            {"key":"c","value":"soon gone","ttl":3600}
            """
        #expect(try await runGalley(["kv", "import", "counter", "--config", local], stdin: lines).status == 0)
        let exported = try await runGalley(["kv", "export", "counter", "--config", local])
        #expect(exported.status == 0, "\(exported.err)")
        let imported = try await runGalley(["kv", "import", "counter", "--config", shared], stdin: exported.out)
        #expect(imported.status == 0, "\(imported.err)")
        let fromPostgres = try await runGalley(["kv", "export", "counter", "--config", shared])
        // Versions differ between stores; everything else comes across.
        func withoutVersions(_ text: String) -> [String] {
            text.split(separator: "\n").map { String($0).replacing(/"version":\d+/, with: "") }.sorted()
        }
        #expect(withoutVersions(fromPostgres.out) == withoutVersions(exported.out))
        #expect(fromPostgres.out.contains(#""metadata":{"owner":"ada"}"#))
        #expect(fromPostgres.out.contains(#""valueBase64":"AAEC/w==""#))
        #expect(fromPostgres.out.contains(#""expiresAt":"#))
        // And back into a new SQLite store.
        let back = try config("back.json", storage: "back")
        #expect(
            try await runGalley(["kv", "import", "counter", "--config", back], stdin: fromPostgres.out).status == 0
        )
        let again = try await runGalley(["kv", "export", "counter", "--config", back])
        #expect(withoutVersions(again.out) == withoutVersions(exported.out))
    }

    @Test func aBadStorageURLIsNamedAtLoad() async throws {
        let bad = try config("bad.json", storage: "bad", postgres: "mysql://root@db/app")
        let run = try await runGalley(["kv", "get", "counter", "k", "--config", bad])
        #expect(run.status != 0)
        #expect(run.err.contains("storage.postgres") && run.err.contains("postgres://"), "\(run.err)")
    }

    @Test func aDatabaseRestartedUnderLoadFailsCallsClearlyAndTheHostRecoversByItself() async throws {
        // A cluster of this test's own: stopping the shared one would fail other suites' calls.
        let cluster = try await Blocking.run { try PostgresCluster.makePrivate() }
        let url = try cluster.makeDatabase()
        let server = try await ServerProcess(config: config("restart.json", storage: "restart", postgres: url))
        #expect(try await ConsoleTests.send(server, "POST", "/count/visits").status == 200)
        try await Blocking.run { try cluster.stop() }
        // During the outage: the function's store call fails with a clear error, the route answers
        // 502, the host stays up.
        let during = try await ConsoleTests.send(server, "POST", "/count/visits")
        #expect(during.status == 502, "\(during.body)")
        // An Event invocation cannot be queued: the Invoke API's ServiceException, nothing accepted.
        let event = try await ConsoleTests.send(
            server,
            "POST",
            "/2015-03-31/functions/counter/invocations",
            headers: ["X-Amz-Invocation-Type": "Event"],
            body: #"{"name":"queued"}"#
        )
        #expect(event.status == 500, "\(event.body)")
        #expect(event.body.contains("could not be queued"), "\(event.body)")
        #expect(event.headers["x-amzn-ErrorType"]?.hasPrefix("ServiceException") == true, "\(event.headers)")
        #expect(try await ConsoleTests.send(server, "GET", "/_galley/health").status == 200)
        try await Blocking.run { try cluster.start() }
        // Back without restarting the host: the pool reconnects.
        let deadline = ContinuousClock.now + .seconds(60)
        var after = 0
        // The recovering calls that failed: one that ran out of time may have committed behind its
        // answer, as across any network (a route's 502 does not say which way it failed).
        var unanswered: [String] = []
        while ContinuousClock.now < deadline {
            let answer = try await ConsoleTests.send(server, "POST", "/count/visits")
            after = answer.status
            if after == 200 { break }
            unanswered.append(answer.body)
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(after == 200)
        let read = try await runGalley([
            "kv", "get", "counter", "visits", "--config", config("r.json", storage: "r", postgres: url),
        ])
        let visits = Int(read.out.trimmingCharacters(in: .whitespacesAndNewlines))
        // Never fewer than the two acknowledged, never the one sent while the database was down.
        #expect(visits.map { (2...2 + unanswered.count).contains($0) } == true, "\(read.out) \(read.err) \(unanswered)")
        // And the queue works again, on the same pool. (An answer that came too late on a loaded
        // machine is a 500 whose insert may still land: the caller retries, at least once.)
        var accepted = 0
        let queueDeadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < queueDeadline, accepted != 202 {
            accepted = try await QueueTests.sendEvent(server.address, "counter", #"{"name":"queued"}"#)
        }
        #expect(accepted == 202, "\(server.stderr.suffix(3000))")
        try await QueueTests.waitUntilEmpty(server)
        #expect(try await counts(url)["queued", default: 0] >= 1, "\(server.stderr.suffix(3000))")
        #expect(server.process.isRunning)
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }

    @Test func anUnreachableDatabaseFailsCallsClearlyAndTheHostKeepsServing() async throws {
        let url = "postgres://galley@127.0.0.1:\(PostgresCluster.freePort())/none"
        let server = try await ServerProcess(config: config("down.json", storage: "down", postgres: url))
        let answer = try await ConsoleTests.send(server, "POST", "/count/visits")
        // The route's function got a store error and failed: a 502, not a hang or a crash.
        #expect(answer.status == 502, "\(answer.body)")
        #expect(try await ConsoleTests.send(server, "GET", "/_galley/health").status == 200)
        #expect(server.process.isRunning)
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }
}
