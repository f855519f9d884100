import Galley
import GalleyPostgres
import GalleyStore
import Logging
import PostgresNIO
import TestSupport

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The PostgreSQL store against raw postgres-nio on a pool of the same size, on a throw-away
/// cluster started for the run: point gets, and durable puts both as the same statements the
/// store runs and as the least a durable upsert can be. 16 callers at once, alternating rounds.
struct PostgresStoreBenchmark {
    var rounds = 5
    static let callers = 16
    static let keyCount = 10_000
    static let value = Data(repeating: UInt8(ascii: "x"), count: 100)

    func run() async throws -> String {
        let cluster: PostgresCluster
        do {
            cluster = try PostgresCluster.shared.get()
        } catch {
            return "### PostgreSQL store\n\nSkipped: \(error)\n"
        }
        var quiet = Logger(label: "bench")
        quiet.logLevel = .error
        let logger = quiet
        let url = try cluster.makeDatabase()
        let store = try PostgresStore(url: url, logger: logger)
        let kv = try store.namespace("bench")
        try await kv.atomic((0..<Self.keyCount).map { .put(StoreBenchmark.key($0), Self.value) })
        let raw = Self.rawClient(cluster, url, connections: 32, logger: logger)
        let runner = Task { await raw.run() }
        defer { runner.cancel() }

        var text = """
            ### PostgreSQL store against raw postgres-nio

            PostgreSQL 15 on loopback (a throw-away cluster), \(Self.callers) callers at once, pools of 32
            connections, medians of \(rounds) alternating rounds.

            | operation | Galley ops/s | raw ops/s | ratio | target |
            |---|---|---|---|---|

            """
        var adapter: [Double] = []
        var baseline: [Double] = []
        let gets = 20_000
        for _ in 0..<rounds {
            adapter.append(
                try await Self.rate(gets) { index in
                    _ = try await kv.get(StoreBenchmark.key(index % Self.keyCount))
                }
            )
            baseline.append(
                try await Self.rate(gets) { index in
                    let key = StoreBenchmark.key(index % Self.keyCount)
                    let rows = try await raw.query(
                        "SELECT value, version, expires_at, metadata FROM galley_kv WHERE namespace = 'bench' AND key = \(key)",
                        logger: logger
                    )
                    for try await _ in rows.decode((ByteBuffer, Int64, Int64?, String?).self) {}
                }
            )
        }
        text += Self.row("get", adapter, baseline, "≥ 0.8x")

        adapter = []
        baseline = []
        var minimal: [Double] = []
        let puts = 4_000
        for round in 0..<rounds {
            adapter.append(
                try await Self.rate(puts) { index in
                    try await kv.put("a:\(round):\(index)", Self.value, options: PutOptions())
                }
            )
            baseline.append(
                try await Self.rate(puts) { index in
                    // The store's statements, in one transaction: lock the key, read it, take a version, write.
                    let key = "b:\(round):\(index)"
                    try await raw.withTransaction(logger: logger) { connection in
                        let lock = Int64(bitPattern: UInt64(truncatingIfNeeded: key.hashValue))
                        try await connection.query(
                            "SELECT pg_advisory_xact_lock(id) FROM unnest(\([lock])::bigint[]) AS id ORDER BY id",
                            logger: logger
                        )
                        try await connection.query(
                            "SELECT key, value, version, expires_at, metadata FROM galley_kv WHERE namespace = 'bench' AND key = ANY(\([key]))",
                            logger: logger
                        )
                        var version: Int64 = 0
                        for try await next in try await connection.query(
                            "SELECT nextval('galley_kv_versions')",
                            logger: logger
                        ).decode(Int64.self) {
                            version = next
                        }
                        try await connection.query(
                            """
                            INSERT INTO galley_kv (namespace, key, value, version) VALUES ('bench', \(key), \(ByteBuffer(data: Self.value)), \(version))
                            ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version
                            """,
                            logger: logger
                        )
                    }
                }
            )
            minimal.append(
                try await Self.rate(puts) { index in
                    try await raw.query(
                        """
                        INSERT INTO galley_kv (namespace, key, value, version) VALUES ('bench', \("c:\(round):\(index)"), \(ByteBuffer(data: Self.value)), nextval('galley_kv_versions'))
                        ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version
                        """,
                        logger: logger
                    )
                }
            )
        }
        text += Self.row("durable put, against the same statements", adapter, baseline, "≥ 0.8x")
        text += Self.row("durable put, against one autocommitted upsert", adapter, minimal, "")
        return text
    }

    /// A bare postgres-nio pool of `connections` to the database `url` of `cluster` (run it).
    static func rawClient(_ cluster: PostgresCluster, _ url: String, connections: Int, logger: Logger) -> PostgresClient
    {
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1",
            port: cluster.port,
            username: "galley",
            password: nil,
            database: String(url.split(separator: "/").last!),
            tls: .disable
        )
        configuration.options.maximumConnections = connections
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }

    static func row(_ name: String, _ adapter: [Double], _ baseline: [Double], _ target: String) -> String {
        let a = adapter.sorted()[adapter.count / 2]
        let b = baseline.sorted()[baseline.count / 2]
        return "| \(name) | \(Int(a)) | \(Int(b)) | **\(String(format: "%.2f", a / b))x** | \(target) |\n"
    }

    /// Operations per second of `count` calls of `body`, spread over ``callers`` tasks.
    static func rate(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var index = caller
                    while index < count {
                        try await body(index)
                        index += callers
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(count) / seconds
    }
}
