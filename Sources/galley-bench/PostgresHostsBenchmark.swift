import Logging
import PostgresNIO
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Hosts on one PostgreSQL: `Event` acceptance through the Invoke API against raw postgres-nio
/// inserts of the same rows at the same durability, and `counter` through nginx with one host and
/// with two.
struct PostgresHostsBenchmark {
    let binaries: String
    let workDirectory: String
    var seconds = 5
    var rounds = 3
    var connections = 32

    func run() async throws -> String {
        guard let wrk = which("wrk"), let taskset = which("taskset"), let nginx = which("nginx") else {
            return "### Hosts on PostgreSQL\n\nSkipped: wrk, taskset and nginx are needed.\n"
        }
        let cluster: PostgresCluster
        do {
            cluster = try PostgresCluster.shared.get()
        } catch {
            return "### Hosts on PostgreSQL\n\nSkipped: \(error)\n"
        }
        let http = HTTPBenchmark(binaries: binaries, workDirectory: workDirectory, seconds: seconds)
        let eventScript = "\(workDirectory)/pg-event.lua"
        try Data(
            "wrk.method = \"POST\"\nwrk.body = '{\"name\": \"Ada\"}'\nwrk.headers[\"X-Amz-Invocation-Type\"] = \"Event\"\n"
                .utf8
        ).write(to: URL(filePath: eventScript))

        // 1. Acceptance, while the queue delivers to `hello` one at a time (its share of
        // concurrency 2), as in the SQLite queue's benchmark.
        var accepted: [Double] = []
        var raw: [Double] = []
        for round in 0..<rounds {
            let url = try cluster.makeDatabase()
            let config = try write(
                "pg-accept-\(round).json",
                """
                {"storage": {"path": "pg-accept-\(round)", "postgres": "\(url)"},
                 "functions": {"hello": {"handler": "Hello", "isolation": "inline", "concurrency": 2}}}
                """
            )
            let result = try http.measure(
                server: ["\(binaries)/galley-full", "serve", "--config", config, "--port"],
                path: "/2015-03-31/functions/hello/invocations",
                lua: eventScript,
                wrk: wrk,
                taskset: taskset
            )
            accepted.append(result.requestsPerSecond)
            raw.append(try await rawInserts(cluster: cluster, database: url))
        }
        let accepts = median(accepted)
        let inserts = median(raw)

        // 2. counter through nginx, one host and two.
        let counterScript = "\(workDirectory)/pg-count.lua"
        try Data(
            "request = function() return wrk.format(\"POST\", \"/count/k\" .. math.random(1000)) end\n".utf8
        ).write(to: URL(filePath: counterScript))
        let url = try cluster.makeDatabase()
        var hosts: [(pid: pid_t, port: Int)] = []
        defer {
            for host in hosts {
                kill(host.pid, SIGTERM)
                var status: Int32 = 0
                waitpid(host.pid, &status, 0)
            }
        }
        for index in 0..<2 {
            let config = try write(
                "pg-host-\(index).json",
                """
                {"storage": {"path": "pg-host-\(index)", "postgres": "\(url)"},
                 "functions": {"counter": {"handler": "Counter", "isolation": "inline", "concurrency": 64,
                                           "routes": ["POST /count/{name}"]}}}
                """
            )
            let port = freePort()
            let pid = spawnProcess("\(binaries)/galley-full", ["serve", "--config", config, "--port", String(port)])
            hosts.append((pid, port))
            guard waitUntilListening(port: port) else { fatalError("galley-full did not start listening") }
        }
        var one: [(host: HTTPBenchmark.Result, databaseMicroseconds: Double)] = []
        var two: [(host: HTTPBenchmark.Result, databaseMicroseconds: Double)] = []
        for _ in 0..<rounds {
            one.append(
                try throughNginx(
                    nginx,
                    hosts: [hosts[0].port],
                    hostPIDs: [hosts[0].pid],
                    script: counterScript,
                    wrk: wrk,
                    taskset: taskset,
                    http: http
                )
            )
            two.append(
                try throughNginx(
                    nginx,
                    hosts: hosts.map(\.port),
                    hostPIDs: hosts.map(\.pid),
                    script: counterScript,
                    wrk: wrk,
                    taskset: taskset,
                    http: http
                )
            )
        }
        let single = one.sorted { $0.host.requestsPerSecond < $1.host.requestsPerSecond }[rounds / 2]
        let double = two.sorted { $0.host.requestsPerSecond < $1.host.requestsPerSecond }[rounds / 2]
        // Where the CPU of one call goes: the ceiling of N hosts on N machines is PostgreSQL's.
        let hostCPU = single.host.cpuMicroseconds
        let databaseCPU = single.databaseMicroseconds

        return """
            ### Hosts on PostgreSQL

            PostgreSQL 15 on loopback (a throw-away cluster, `synchronous_commit = on`); \(seconds) s per run, \
            \(rounds) rounds, medians; wrk on core 1, \(connections) connections. Galley is `galley-full serve`, unpinned.

            | measure | Galley | baseline | ratio | target |
            |---|---|---|---|---|
            | `Event` invocations accepted/s through the Invoke API, each committed before its 202 | \(format(accepts, 0)) | raw postgres-nio inserts/s of the same rows, \(connections) callers, each autocommitted: \(format(inserts, 0)) | **\(format(accepts / inserts))x** | ≥ 0.8x |
            | `POST /count/{name}` (1,000 names) through nginx, req/s | 2 hosts: \(format(double.host.requestsPerSecond, 0)) (p99 \(format(double.host.p99)) ms) | 1 host: \(format(single.host.requestsPerSecond, 0)) (p99 \(format(single.host.p99)) ms) | \(format(double.host.requestsPerSecond / single.host.requestsPerSecond))x | reported |

            CPU per `counter` call with one host: Galley \(format(hostCPU, 0)) µs, PostgreSQL \(format(databaseCPU, 0)) µs. \
            Here both hosts and the database share 2 cores, so a second host adds no CPU. With each host on \
            its own machine, one host saturates its core at about \(format(1e6 / hostCPU, 0)) calls/s and one \
            PostgreSQL core carries about \(format(1e6 / databaseCPU, 0)) calls/s: about \(format(hostCPU / databaseCPU, 1)) \
            single-core hosts per database core before the database is the limit.

            """
    }

    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = "\(workDirectory)/\(name)"
        try Data(text.utf8).write(to: URL(filePath: path))
        return path
    }

    /// wrk through an nginx in front of `hosts`, on core 1 with wrk.
    private func throughNginx(
        _ nginx: String,
        hosts: [Int],
        hostPIDs: [pid_t],
        script: String,
        wrk: String,
        taskset: String,
        http: HTTPBenchmark
    ) throws -> (host: HTTPBenchmark.Result, databaseMicroseconds: Double) {
        let prefix = "\(workDirectory)/nginx-\(hosts.count)"
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        let port = freePort()
        let conf = try write(
            "nginx-\(hosts.count).conf",
            NginxConfiguration.text(
                prefix: prefix,
                servers: hosts.map { "127.0.0.1:\($0)" },
                listen: "127.0.0.1:\(port)",
                keepalive: 64,
                workerConnections: 1024
            )
        )
        let pid = spawnProcess(
            taskset,
            ["-c", "1", nginx, "-c", conf, "-p", prefix, "-e", "\(prefix)/error.log"]
        )
        defer {
            kill(pid, SIGQUIT)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        guard waitUntilListening(port: port) else { fatalError("nginx did not start listening") }
        let (result, database) = http.run(
            wrk: wrk,
            taskset: taskset,
            url: "http://127.0.0.1:\(port)/",
            lua: script,
            cpuTicks: { hostPIDs.map(http.cpuTicks).reduce(0, +) },
            otherTicks: postgresTicks
        )
        return (result, database)
    }

    /// CPU ticks of every PostgreSQL process on the machine (the benchmark's cluster is the only one).
    private func postgresTicks() -> Int {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        let http = HTTPBenchmark(binaries: binaries, workDirectory: workDirectory)
        return entries.compactMap { Int32($0) }.reduce(0) { sum, pid in
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            return name.hasPrefix("postgres") ? sum + http.cpuTicks(of: pid) : sum
        }
    }

    /// Rows per second that `connections` callers insert into a copy of the queue's table, one
    /// autocommitted insert each (durable at return, as a 202 is), for ``seconds``.
    private func rawInserts(cluster: PostgresCluster, database url: String) async throws -> Double {
        var quiet = Logger(label: "bench")
        quiet.logLevel = .error
        let logger = quiet
        let client = PostgresStoreBenchmark.rawClient(cluster, url, connections: connections, logger: logger)
        let runner = Task { await client.run() }
        defer { runner.cancel() }
        try await client.query(
            """
            CREATE TABLE raw_events (id bigserial PRIMARY KEY, function text NOT NULL, request_id text NOT NULL,
                payload bytea NOT NULL, size integer NOT NULL, accepted_at bigint NOT NULL, due_at bigint NOT NULL)
            """,
            logger: logger
        )
        let payload = ByteBuffer(string: #"{"name": "Ada"}"#)
        let end = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let rows = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    var rows = 0
                    while ContinuousClock.now < end {
                        let now = Int64(Date().timeIntervalSince1970 * 1000)
                        try await client.query(
                            """
                            INSERT INTO raw_events (function, request_id, payload, size, accepted_at, due_at)
                            VALUES ('hello', \(UUID().uuidString.lowercased()), \(payload), \(payload.readableBytes), \(now), \(now))
                            """,
                            logger: logger
                        )
                        rows += 1
                    }
                    return rows
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        return Double(rows) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
