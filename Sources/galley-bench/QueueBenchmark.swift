import CSQLite
import Functions
import GalleyHost
import Logging

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The async queue: durable acceptance through the Invoke API against raw SQLite inserts at the
/// same durability, end-to-end delivery of a 10,000-event backlog, and synchronous p99 with and
/// without that backlog draining through the same function.
struct QueueBenchmark {
    let binaries: String
    let workDirectory: String
    var seconds = 5
    var rounds = 3
    var connections = 32
    var backlog = 10_000

    func run() async throws -> String {
        guard let wrk = which("wrk"), let taskset = which("taskset") else {
            return "### Async queue\n\nSkipped: wrk and taskset are needed (`apt-get install -y wrk util-linux`).\n"
        }
        let http = HTTPBenchmark(binaries: binaries, workDirectory: workDirectory, seconds: seconds)
        /// `galley serve` on core 0 with one event loop; `measure` appends the port.
        let serve = { (config: String) in
            [taskset, "-c", "0", "\(binaries)/galley", "serve", "--config", config, "--event-loops", "1", "--port"]
        }
        let eventScript = "\(workDirectory)/event.lua"
        try Data(
            "wrk.method = \"POST\"\nwrk.body = '{\"name\": \"Ada\"}'\nwrk.headers[\"X-Amz-Invocation-Type\"] = \"Event\"\n"
                .utf8
        ).write(to: URL(filePath: eventScript))
        let syncScript = "\(workDirectory)/sync.lua"
        try Data("wrk.method = \"POST\"\nwrk.body = '{}'\n".utf8).write(to: URL(filePath: syncScript))

        // 1. Acceptance: every 202 is fsynced, as every raw insert is.
        var accepted: [Double] = []
        var raw: [Double] = []
        var rawBatched: [Double] = []
        for round in 0..<rounds {
            let folder = "\(workDirectory)/accept-\(round)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let config = "\(folder)/runtime.json"
            try Data(
                #"{"functions": {"hello": {"handler": "Hello", "isolation": "inline", "concurrency": 2}}}"#.utf8
            ).write(to: URL(filePath: config))
            let result = try http.measure(
                server: serve(config),
                path: "/2015-03-31/functions/hello/invocations",
                lua: eventScript,
                wrk: wrk,
                taskset: taskset
            )
            accepted.append(result.requestsPerSecond)
            raw.append(rawInserts(path: "\(folder)/raw.sqlite", batch: 1))
            rawBatched.append(rawInserts(path: "\(folder)/raw-batched.sqlite", batch: connections))
        }
        let accepts = median(accepted)
        let inserts = median(raw)
        let batched = median(rawBatched)

        // 2. Delivery of a backlog, and 3. sync latency while it drains.
        let folder = "\(workDirectory)/drain"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = "\(folder)/runtime.json"
        let functions =
            #""hello": {"handler": "Hello", "isolation": "inline", "concurrency": 64}, "#
            + #""work": {"handler": "Inspect", "isolation": "inline", "concurrency": 8}"#
        try Data(#"{"storage": {"path": "data"}, "functions": {\#(functions)}}"#.utf8).write(to: URL(filePath: config))
        try await fill(config: config, function: "hello", payload: #"{"name": "Ada"}"#)
        let drainSeconds = try drain(config: config, taskset: taskset)

        let measureWork = {
            try http.measure(
                server: serve(config),
                path: "/2015-03-31/functions/work/invocations",
                lua: syncScript,
                wrk: wrk,
                taskset: taskset
            )
        }
        let quiet = try measureWork()
        try await fill(config: config, function: "work", payload: #"{"sleepMs": 10}"#)
        let busy = try measureWork()

        return """
            ### Async queue

            Galley pinned to core 0 with one event loop, wrk (or the raw SQLite loop) on core 1; \
            \(seconds) s per run, \(rounds) rounds, medians. The queue file and the raw file are in WAL mode with \
            `synchronous = FULL`: an event answered 202 and a raw insert that returned are both fsynced.

            Targets: acceptance ≥ 0.8x raw SQLite inserts; sync p99 with a \(backlog)-event backlog draining ≤ 1.5x without.

            | measure | Galley | baseline | ratio |
            |---|---|---|---|
            | `Event` invocations accepted/s (wrk, \(connections) connections) | \(format(accepts, 0)) | raw inserts/s, one per transaction: \(format(inserts, 0)) | **\(format(accepts / inserts))x** |
            | | | raw inserts/s, \(connections) per transaction: \(format(batched, 0)) | \(format(accepts / batched))x |
            | \(backlog)-event backlog delivered to inline `hello` (concurrency 64, share 32), events/s | \(format(Double(backlog) / drainSeconds, 0)) | raw inserts/s: \(format(inserts, 0)) | \(format(Double(backlog) / drainSeconds / inserts))x |
            | sync `work` p99 ms, backlog of \(backlog) × 10 ms events draining through the same function | \(format(busy.p99)) | p99 with no backlog: \(format(quiet.p99)) | **\(format(busy.p99 / quiet.p99))x** |
            | sync `work` req/s, same | \(format(busy.requestsPerSecond, 0)) | with no backlog: \(format(quiet.requestsPerSecond, 0)) | \(format(busy.requestsPerSecond / quiet.requestsPerSecond))x |

            """
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// Inserts event-sized rows for `seconds`, `batch` per transaction; rows per second.
    func rawInserts(path: String, batch: Int) -> Double {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let db = RawSQLite(path: path, synchronous: "FULL")
        db.exec(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, function TEXT, request_id TEXT, payload BLOB, accepted_at INTEGER)"
        )
        let insert = db.statement(
            "INSERT INTO events (function, request_id, payload, accepted_at) VALUES (?1, ?2, ?3, ?4)"
        )
        let payload = Array(#"{"name": "Ada"}"#.utf8)
        let started = ContinuousClock.now
        let end = started + .seconds(seconds)
        var rows = 0
        while ContinuousClock.now < end {
            db.exec("BEGIN IMMEDIATE")
            for _ in 0..<batch {
                db.bind(insert, 1, "hello")
                db.bind(insert, 2, UUID().uuidString.lowercased())
                payload.withUnsafeBytes {
                    _ = sqlite3_bind_blob(insert, 3, $0.baseAddress, Int32($0.count), csqlite_transient())
                }
                sqlite3_bind_int64(insert, 4, Int64(rows))
                guard sqlite3_step(insert) == SQLITE_DONE else { fatalError(String(cString: sqlite3_errmsg(db.db))) }
                sqlite3_reset(insert)
                rows += 1
            }
            db.exec("COMMIT")
        }
        let elapsed = ContinuousClock.now - started
        return Double(rows) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Queues `backlog` events through the public EventQueue, with no host delivering them.
    func fill(config: String, function: String, payload: String) async throws {
        let configuration = try RuntimeConfiguration.load(from: config)
        let deployment = try Deployment(configuration: configuration, catalog: Functions.catalog, file: config)
        let dispatcher = Dispatcher(deployment: deployment, logWriter: LogWriter(format: .text) { _ in })
        let queue = try EventQueue(
            path: EventQueue.file(configuration, configurationFile: config),
            dispatcher: dispatcher,
            logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        )
        let body = Data(payload.utf8)
        let perTask = backlog / 32
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    for _ in 0..<perTask {
                        try await queue.submit(Invocation(function: function, payload: body, kind: .event))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Starts the host on the filled queue and returns the seconds until it is empty.
    func drain(config: String, taskset: String) throws -> Double {
        let port = freePort()
        let started = ContinuousClock.now
        let pid = spawnProcess(
            taskset,
            [
                "-c", "0", "\(binaries)/galley", "serve", "--config", config, "--event-loops", "1", "--port",
                String(port),
            ]
        )
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        guard waitUntilListening(port: port) else { fatalError("galley serve did not start") }
        while true {
            let status = capture(which("curl") ?? "/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/_galley/queue"])
            if status.hasPrefix(#"{"events":0,"#) { break }
            usleep(20_000)
        }
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
