import Galley
import GalleyStore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The store's operations against raw SQLite on a file with the same schema and settings,
/// alternating rounds in one run.
struct StoreBenchmark {
    let workDirectory: String
    let binaries: String
    var rounds = 5

    static let namespace = "bench"
    static let keyCount = 10_000
    static let value = Data(repeating: UInt8(ascii: "x"), count: 100)

    static func key(_ index: Int) -> String {
        let digits = String(index)
        return "user:" + String(repeating: "0", count: 6 - digits.count) + digits
    }

    func run() async throws -> String {
        let adapterPath = "\(workDirectory)/adapter/store.sqlite"
        let rawPath = "\(workDirectory)/raw/store.sqlite"
        let store = try SQLiteStore(path: adapterPath, durability: .full)
        _ = try SQLiteStore(path: rawPath, durability: .full)  // the same schema
        let kv = try store.namespace(Self.namespace)
        let raw = RawSQLite(path: rawPath, synchronous: "FULL")

        // Preload 10,000 keys of 100 bytes in both.
        try await kv.atomic((0..<Self.keyCount).map { .put(Self.key($0), Self.value) })
        raw.exec("BEGIN")
        for index in 0..<Self.keyCount { raw.upsert(Self.namespace, Self.key(index), Self.value, version: 1) }
        raw.exec("COMMIT")

        var generator = SystemRandomNumberGenerator()
        let lookups = (0..<50_000).map { _ in Self.key(Int.random(in: 0..<Self.keyCount, using: &generator)) }
        var rows: [(String, Samples, Samples, String)] = []

        // Point gets.
        var adapter: [Double] = []
        var baseline: [Double] = []
        for _ in 0..<rounds {
            adapter.append(try await Self.rate(lookups.count) { for key in lookups { _ = try await kv.get(key) } })
            baseline.append(
                try await Self.rate(lookups.count) { for key in lookups { _ = raw.get(Self.namespace, key) } }
            )
        }
        rows.append(("get (prepared point read)", Samples(adapter), Samples(baseline), "≥ 0.8x"))

        // Durable puts, each its own transaction.
        adapter = []
        baseline = []
        let puts = 400
        for round in 0..<rounds {
            adapter.append(
                try await Self.rate(puts) {
                    for index in 0..<puts {
                        try await kv.put("new:\(round):\(index)", Self.value, options: PutOptions())
                    }
                }
            )
            baseline.append(
                try await Self.rate(puts) {
                    for index in 0..<puts { raw.put(Self.namespace, "new:\(round):\(index)", Self.value, version: 2) }
                }
            )
        }
        rows.append(("put, one durable commit each (synchronous=FULL)", Samples(adapter), Samples(baseline), "≥ 0.9x"))
        var versioned: [Double] = []
        for round in 0..<rounds {
            versioned.append(
                try await Self.rate(puts) {
                    for index in 0..<puts {
                        raw.versionedPut(Self.namespace, "versioned:\(round):\(index)", Self.value)
                    }
                }
            )
        }
        rows.append(
            (
                "raw put that also takes a store-wide version (the store's own work)", Samples(versioned),
                Samples(baseline), ""
            )
        )

        // One batch of 10,000 puts.
        adapter = []
        baseline = []
        let batch = 10_000
        for round in 0..<rounds {
            let operations = (0..<batch).map { AtomicOperation.put("batch:\(round):\($0)", Self.value) }
            adapter.append(try await Self.rate(batch) { try await kv.atomic(operations) })
            baseline.append(
                try await Self.rate(batch) {
                    raw.exec("BEGIN IMMEDIATE")
                    for index in 0..<batch {
                        raw.upsert(Self.namespace, "batch:\(round):\(index)", Self.value, version: 3)
                    }
                    raw.exec("COMMIT")
                }
            )
        }
        rows.append(("put 10,000 in one transaction", Samples(adapter), Samples(baseline), ""))

        // List 1,000 keys by prefix.
        adapter = []
        baseline = []
        let lists = 50
        for _ in 0..<rounds {
            adapter.append(
                try await Self.rate(lists) {
                    for _ in 0..<lists {
                        let page = try await kv.list(prefix: "user:001", after: nil, limit: 1000)
                        precondition(page.entries.count == 1000)
                    }
                }
            )
            baseline.append(
                try await Self.rate(lists) {
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    for _ in 0..<lists {
                        precondition(
                            raw.list(Self.namespace, from: "user:001", below: "user:002", now: now, limit: 1001).count
                                == 1000
                        )
                    }
                }
            )
        }
        rows.append(("list 1,000 keys by prefix (lists/s)", Samples(adapter), Samples(baseline), ""))

        // Increments from 4 processes at once.
        adapter = []
        baseline = []
        let perProcess = 250
        for round in 0..<rounds {
            adapter.append(
                try incrementRate(mode: "adapter", path: adapterPath, key: "hits:\(round)", count: perProcess)
            )
            baseline.append(try incrementRate(mode: "raw", path: rawPath, key: "hits:\(round)", count: perProcess))
            let total = try await kv.get("hits:\(round)", as: Int.self)
            precondition(total == 4 * perProcess, "lost increments: \(total ?? 0)")
        }
        rows.append(("increment, 4 processes × 250 at once", Samples(adapter), Samples(baseline), ""))

        var text = """
            ### Key-value store against raw SQLite (\(rounds) alternating rounds; ops/s, median [min–max])

            Same file layout, schema and pragmas on both sides (WAL, `synchronous=FULL`, 10 s busy timeout),
            10,000 keys like `user:000123` with 100-byte values.

            | operation | Galley store | raw SQLite | ratio | target |
            |---|---|---|---|---|

            """
        for (name, galley, raw, target) in rows {
            text +=
                "| \(name) | \(format(galley.median, 0)) [\(format(galley.values.first!, 0))–\(format(galley.values.last!, 0))] "
                + "| \(format(raw.median, 0)) [\(format(raw.values.first!, 0))–\(format(raw.values.last!, 0))] "
                + "| **\(format(galley.median / raw.median))x** | \(target) |\n"
        }
        return text
    }

    /// Operations per second of `body`, which performs `count` of them.
    static func rate(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
        let started = ContinuousClock.now
        try await body()
        return Double(count) / (milliseconds(ContinuousClock.now - started) / 1000)
    }

    /// Four worker processes incrementing one key at once; operations per second over all of them.
    func incrementRate(mode: String, path: String, key: String, count: Int) throws -> Double {
        let started = ContinuousClock.now
        let pids = (0..<4).map { _ in
            spawnProcess("\(binaries)/galley-bench", ["store-worker", mode, path, key, String(count)])
        }
        for pid in pids { waitForProcess(pid) }
        return Double(4 * count) / (milliseconds(ContinuousClock.now - started) / 1000)
    }

    /// The child side of ``incrementRate``.
    static func worker(_ arguments: [String]) async throws {
        let (mode, path, key, count) = (arguments[0], arguments[1], arguments[2], Int(arguments[3])!)
        if mode == "adapter" {
            let kv = try SQLiteStore(path: path, durability: .full).namespace(namespace)
            for _ in 0..<count { try await kv.increment(key) }
        } else {
            let raw = RawSQLite(path: path, synchronous: "FULL")
            for _ in 0..<count { _ = raw.increment(namespace, key) }
        }
    }
}
