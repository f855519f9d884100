import Foundation
import Galley
import GalleyStore
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The store as users reach it: `counter` through `galley invoke`, and `galley kv`, as real processes
/// sharing one file.
struct StoreCommandTests {
    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write(
            "runtime.json",
            #"{"storage": {"path": "data"}, "functions": {"counter": {"handler": "Counter"}, "hello": {"handler": "Hello"}}}"#
        )
    }

    var storeFile: String { directory.path("data/store.sqlite") }

    @Test func aValueThatIsNotJSONIsRefusedUnlessRaw() async throws {
        let refused = try await runGalley(["kv", "put", "app", "k", "notjson", "--config", config])
        #expect(refused.status == 2)
        #expect(refused.err.hasPrefix("galley: the value is not JSON (line 1, column 1"), "\(refused.err)")
        #expect(refused.err.contains("--raw"))
        #expect(try await runGalley(["kv", "get", "app", "k", "--config", config]).status == 1, "nothing was written")
        let raw = try await runGalley(["kv", "put", "app", "k", "notjson", "--raw", "--config", config])
        #expect(raw.status == 0, "\(raw.err)")
        #expect(try await runGalley(["kv", "get", "app", "k", "--config", config]).out == "notjson\n")
    }

    @Test func deadLettersOfAFunctionThatIsNotDeployedAreAMistake() async throws {
        let output = try await runGalley(["dlq", "list", "nosuchfunction", "--config", config])
        #expect(output.status == 2)
        #expect(output.err.contains("no function named 'nosuchfunction'; deployed: "), "\(output.err)")
    }

    @Test func counterCountsAcrossInvocations() async throws {
        for expected in 1...3 {
            let output = try await runGalley(["invoke", "counter", "--config", config], stdin: #"{"name": "visits"}"#)
            #expect(output.out == #"{"count":\#(expected),"name":"visits"}"# + "\n")
        }
        let get = try await runGalley(["kv", "get", "counter", "visits", "--config", config])
        #expect(get.out == "3\n")
        let read = try await runGalley(
            ["invoke", "counter", "--config", config],
            stdin: #"{"pathParameters": {"name": "visits"}, "requestContext": {"http": {"method": "GET"}}}"#
        )
        #expect(read.out == #"{"count":3,"name":"visits"}"# + "\n", "GET reads without counting")
    }

    @Test func fourProcessesIncrementingConcurrentlyLoseNothing() async throws {
        let lines = Array(repeating: #"{"name": "shared"}"#, count: 250).joined(separator: "\n")
        let config = self.config
        let outputs = try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await runGalley(["invoke", "counter", "--lines", "--config", config], stdin: lines)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for output in outputs {
            #expect(output.status == 0, "\(output.err.suffix(500))")
            #expect(output.out.split(separator: "\n").count == 250)
        }
        // Every answer is a distinct count: no two increments saw the same value.
        let counts = outputs.flatMap { $0.out.split(separator: "\n") }.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["count"] as? Int
        }
        #expect(Set(counts).count == 1000)
        let get = try await runGalley(["kv", "get", "counter", "shared", "--config", config])
        #expect(get.out == "1000\n")
    }

    @Test(arguments: [40, 120, 300])
    func killingTheWriterLosesNoAcknowledgedIncrement(afterAcknowledgements: Int) async throws {
        let process = Process()
        process.executableURL = Binaries.galley
        process.arguments = ["invoke", "counter", "--lines", "--config", config]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Feed far more events than it will get through; answers are acknowledgements.
        let writer = input.fileHandleForWriting
        let feeding = Task {
            await Blocking.run {
                let line = Data((#"{"name": "durable"}"# + "\n").utf8)
                for _ in 0..<5000 { if (try? writer.write(contentsOf: line)) == nil { return } }
            }
        }
        // Read answers; at the threshold kill the process, then drain what it wrote before dying:
        // every answer it wrote was an acknowledged increment.
        let reader = output.fileHandleForReading
        let pid = process.processIdentifier
        let acknowledged = await Blocking.run { () -> Int in
            var acknowledged = 0
            var buffer = Data()
            var killed = false
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer = Data(buffer[(newline + 1)...])
                    let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any]
                    acknowledged = object?["count"] as? Int ?? acknowledged
                }
                if !killed && acknowledged >= afterAcknowledgements {
                    kill(pid, SIGKILL)
                    killed = true
                }
            }
            return acknowledged
        }
        process.waitUntilExit()
        try? writer.close()
        await feeding.value
        #expect(acknowledged >= afterAcknowledgements)
        #expect(process.terminationReason == .uncaughtSignal)
        let store = try SQLiteStore(path: storeFile)
        #expect(try store.integrityCheck() == "ok")
        let stored = try #require(try await store.namespace("counter").get("durable", as: Int.self))
        #expect(stored >= acknowledged, "acknowledged \(acknowledged) increments but the file holds \(stored)")
        #expect(stored <= acknowledged + 1, "at most the one increment in flight may be there unacknowledged")
    }

    @Test func kvCommandsRoundTrip() async throws {
        let put = try await runGalley([
            "kv", "put", "app", "user:1", #"{"name":"Ada"}"#, "--metadata", "by=test", "--config", config,
        ])
        #expect(put.status == 0)
        let version = try #require(Int(put.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        let conflict = try await runGalley(["kv", "put", "app", "user:1", "{}", "--if-absent", "--config", config])
        #expect(conflict.status == 1)
        #expect(conflict.err.contains("conflict on 'user:1'"))
        let stale = try await runGalley(
            ["kv", "put", "app", "user:1", "{}", "--if-version", "\(version + 5)", "--config", config]
        )
        #expect(stale.status == 1)
        #expect(
            try await runGalley(["kv", "get", "app", "user:1", "--config", config]).out == #"{"name":"Ada"}"# + "\n"
        )
        _ = try await runGalley(["kv", "put", "app", "user:2", "2", "--config", config])
        _ = try await runGalley(["kv", "put", "app", "item:1", "3", "--config", config])
        let list = try await runGalley(["kv", "list", "app", "--prefix", "user:", "--config", config])
        #expect(list.out == "user:1\nuser:2\n")
        let page = try await runGalley(["kv", "list", "app", "--limit", "1", "--config", config])
        #expect(page.out == "item:1\n")
        #expect(page.err.contains("--after 'item:1'"))
        let export = try await runGalley(["kv", "export", "app", "--config", config])
        let lines = export.out.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].hasPrefix(#"{"key":"user:1","value":{"name":"Ada"},"version":"#))
        #expect(lines[1].hasSuffix(#","metadata":{"by":"test"}}"#))
        let imported = try await runGalley(["kv", "import", "copy", "-", "--config", config], stdin: export.out)
        #expect(imported.status == 0)
        #expect(try await runGalley(["kv", "list", "copy", "--config", config]).out == "item:1\nuser:1\nuser:2\n")
        let deleted = try await runGalley(["kv", "delete", "app", "user:2", "--config", config])
        #expect(deleted.status == 0)
        let missing = try await runGalley(["kv", "get", "app", "user:2", "--config", config])
        #expect(missing.status == 1)
        #expect(missing.err == "galley: no key 'user:2' in namespace 'app'\n")
    }

    @Test func badImportChangesNothing() async throws {
        let output = try await runGalley(
            ["kv", "import", "app", "--config", config],
            stdin: "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\", \"value\": 2, \"colour\": \"red\"}\n"
        )
        #expect(output.status == 2)
        #expect(output.err.hasPrefix("galley: stdin: line 2: unknown field 'colour'"))
        #expect(try await runGalley(["kv", "list", "app", "--config", config]).out.isEmpty)
    }

    @Test(arguments: ["1e300", "inf", "nan", "0x10", "1,5", " 5"])
    func aTTLThatIsNotADecimalNumberOfSecondsIsAUsageError(ttl: String) async throws {
        let output = try await runGalley(["kv", "put", "app", "k", "v", "--ttl", ttl, "--config", config])
        #expect(output.status == 64, "\(output.status) \(output.err)")  // ArgumentParser's usage error
        #expect(output.err.contains("The value '\(ttl)' is invalid for '--ttl <ttl>'"), "\(output.err)")
        #expect(try await runGalley(["kv", "get", "app", "k", "--config", config]).status != 0, "nothing was written")
    }

    @Test(arguments: ["9223372000000000", "0"])
    func anOutOfRangeTTLIsAUsageErrorNotACrash(ttl: String) async throws {
        let output = try await runGalley(["kv", "put", "app", "k", "v", "--ttl", ttl, "--config", config])
        #expect(output.status == 64, "\(output.status) \(output.err)")  // ArgumentParser's usage error
        #expect(
            output.err.contains("--ttl must be a number of seconds more than 0 and at most 3153600000"),
            "\(output.err)"
        )
        #expect(try await runGalley(["kv", "list", "app", "--config", config]).out.isEmpty)
    }

    @Test(arguments: [#""ttl": 1e300"#, #""expiresAt": 9223372036854775807"#, #""ttl": -5"#])
    func anImportLineWithAnOutOfRangeExpiryChangesNothing(field: String) async throws {
        let output = try await runGalley(
            ["kv", "import", "app", "--config", config],
            stdin: "{\"key\": \"a\", \"value\": 1}\n{\"key\": \"b\", \"value\": 2, \(field)}\n"
        )
        #expect(output.status == 2, "\(output.err)")
        #expect(output.err.hasPrefix("galley: stdin: line 2: "), "\(output.err)")
        #expect(try await runGalley(["kv", "list", "app", "--config", config]).out.isEmpty)
    }

    @Test func anImportLineThatExpiredLongAgoIsSkipped() async throws {
        let output = try await runGalley(
            ["kv", "import", "app", "--config", config],
            stdin: #"{"key": "old", "value": 1, "expiresAt": -9223372036854775808}"# + "\n"
        )
        #expect(output.status == 0, "\(output.err)")
        #expect(try await runGalley(["kv", "list", "app", "--config", config]).out.isEmpty)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func corruptStoreFileIsAClearErrorAndTheHostKeepsServingOtherFunctions() async throws {
        try FileManager.default.createDirectory(atPath: directory.path("data"), withIntermediateDirectories: true)
        try Data(repeating: 0x5A, count: 4096).write(to: URL(filePath: storeFile))
        let kv = try await runGalley(["kv", "get", "counter", "x", "--config", config])
        #expect(kv.status == 2)
        #expect(kv.err.contains(storeFile) && kv.err.contains("damaged or not a Galley store"))
        #expect(kv.err.split(separator: "\n").count == 1)
        let counter = try await runGalley(["invoke", "counter", "--config", config], stdin: #"{"name": "x"}"#)
        #expect(counter.status == 1)
        #expect(counter.out.contains(#""errorType":"StoreError""#))
        #expect(counter.out.contains("damaged or not a Galley store"))
        let hello = try await runGalley(["invoke", "hello", "--config", config], stdin: "{}")
        #expect(hello.status == 0)

        // A live host: the store's functions fail with the reason, logged; the others keep serving.
        let server = try await ServerProcess(config: config)
        let invoke = { (name: String) in
            try await curl([
                "-X", "POST", "-d", #"{"name": "x"}"#, "\(server.address)/2015-03-31/functions/\(name)/invocations",
            ])
        }
        let failed = try await invoke("counter")
        #expect(failed.out.contains(#""errorType":"StoreError""#), "\(failed.out)")
        #expect(
            try await server.waitForLog {
                $0.contains("Invoke Error StoreError:") && $0.contains("damaged or not a Galley store")
            }
        )
        #expect(try await invoke("hello").out == #"{"message":"Hello, x!"}"#)
        #expect(server.process.isRunning)
    }
}
