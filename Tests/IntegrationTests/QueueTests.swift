import Foundation
import Galley
import GalleyStore
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `Event` invocations against a live `galley serve`: what is answered 202 survives `kill -9`.
@Suite(.serialized)
struct QueueTests {
    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try Self.config(
            in: directory,
            name: "runtime.json",
            storage: #""path": "data", "durability": "normal""#
        )
    }

    /// The test's functions, with `storage` as runtime.json's storage members.
    static func config(in directory: TemporaryDirectory, name: String, storage: String) throws -> String {
        try directory.write(
            name,
            """
            {
              "storage": { \(storage) },
              "functions": {
                "counter": { "handler": "Counter", "isolation": "inline", "concurrency": 20 },
                "slow": { "handler": "Inspect", "timeout": 120, "concurrency": 2 },
                "fails": { "handler": "Inspect", "retries": 1, "retryDelay": 0.05, "onFailure": "sink" },
                "sink": { "handler": "Inspect" }
              }
            }
            """
        )
    }

    static func sendEvent(_ address: String, _ function: String, _ payload: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "\(address)/2015-03-31/functions/\(function)/invocations")!)
        request.httpMethod = "POST"
        request.setValue("Event", forHTTPHeaderField: "X-Amz-Invocation-Type")
        request.httpBody = Data(payload.utf8)
        request.timeoutInterval = 30
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as! HTTPURLResponse).statusCode
    }

    static func queueStatus(_ server: ServerProcess) async throws -> [String: Any] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "\(server.address)/_galley/queue")!)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// Polls `/_galley/queue` until no event waits or runs.
    static func waitUntilEmpty(_ server: ServerProcess, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await queueStatus(server)["events"] as? Int != 0 {
            guard ContinuousClock.now < deadline else {
                Issue.record("the queue did not empty: \(try await queueStatus(server))")
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Sends `names` as counter events from `senders` concurrent callers; returns the acknowledged
    /// names. `killAfter` kills the host with SIGKILL once that many were acknowledged.
    static func stream(
        _ names: [String],
        to server: ServerProcess,
        senders: Int,
        killAfter: Int? = nil
    ) async -> Set<String> {
        let shared = Shared()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<senders {
                group.addTask {
                    while true {
                        let index = shared.next.add(1, ordering: .relaxed).oldValue
                        guard index < names.count else { return }
                        let name = names[index]
                        guard (try? await sendEvent(server.address, "counter", #"{"name":"\#(name)"}"#)) == 202 else {
                            return
                        }
                        let count = shared.acknowledged.withLock {
                            $0.insert(name)
                            return $0.count
                        }
                        if count == killAfter { server.signal(SIGKILL) }
                    }
                }
            }
        }
        return shared.acknowledged.withLock { $0 }
    }

    /// Every one of `names` (counter names sent once each) counted at least once in `counts`, and
    /// at most `bound` extra deliveries; prints what happened after `what`.
    static func expectDelivered(_ names: [String], counts: [String: Int], duplicatesAtMost bound: Int, _ what: String) {
        let missing = names.filter { counts[$0, default: 0] < 1 }
        let duplicates = counts.values.reduce(0) { $0 + max(0, $1 - 1) }
        print("\(what) events: \(missing.count) lost, \(duplicates) delivered twice")
        #expect(missing.isEmpty, "lost: \(missing.prefix(10))")
        #expect(duplicates <= bound)
    }

    /// What concurrent senders share.
    final class Shared: Sendable {
        let next = Atomic<Int>(0)
        /// How many were answered 202, when the names themselves do not matter.
        let acknowledgedCount = Atomic<Int>(0)
        let acknowledged = Mutex<Set<String>>([])
    }

    @Test func killingTheHostMidStreamLosesNoAcceptedEvent() async throws {
        let total = 5000
        let names = (0..<total).map { "e\($0)" }
        let first = try await ServerProcess(config: config)
        let beforeKill = await Self.stream(names, to: first, senders: 16, killAfter: total / 2)
        _ = try await first.waitForExit()
        #expect(beforeKill.count >= total / 2)

        // Restarted, the host delivers what waited and accepts the rest of the stream.
        let second = try await ServerProcess(config: config)
        let rest = names.filter { !beforeKill.contains($0) }
        let afterRestart = await Self.stream(rest, to: second, senders: 16)
        #expect(afterRestart.count == rest.count)
        try await Self.waitUntilEmpty(second)

        let store = try SQLiteStore(path: directory.path("data/store.sqlite"), durability: .normal)
        let namespace = try store.namespace("counter")
        var counts: [String: Int] = [:]
        var cursor: String?
        repeat {
            let page = try await namespace.list(prefix: "", after: cursor, limit: 1000)
            for entry in page.entries { counts[entry.key] = Int(String(decoding: entry.value, as: UTF8.self)) }
            cursor = page.cursor
        } while cursor != nil
        // Only events being delivered or in a caller's unanswered request at the kill may repeat:
        // at most the queue's share (10) plus the 16 senders.
        Self.expectDelivered(
            names,
            counts: counts,
            duplicatesAtMost: 26,
            "kill -9 after \(beforeKill.count) of \(total)"
        )
        let status = try await Self.queueStatus(second)
        let counter = (status["functions"] as? [String: Any])?["counter"] as? [String: Any]
        #expect(counter?["waiting"] as? Int == 0)
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0, "\(second.stderr.suffix(2000))")
    }

    @Test func sigtermWithABacklogExitsPromptlyAndTheRestIsDeliveredAfterRestart() async throws {
        let first = try await ServerProcess(config: config)
        for index in 0..<20 {
            #expect(try await Self.sendEvent(first.address, "slow", #"{"sleepMs": 200, "n": \#(index)}"#) == 202)
        }
        #expect(try await first.waitForLog { $0.contains("START RequestId") })
        first.signal(SIGTERM)
        #expect(try await first.waitForExit() == 0)
        // The attempts running at SIGTERM finish; the backlog is not drained (some still wait below).
        let second = try await ServerProcess(config: config)
        let waiting = try await Self.queueStatus(second)["events"] as? Int ?? 0
        #expect(waiting > 0 && waiting < 20, "\(waiting) waiting after restart")
        try await Self.waitUntilEmpty(second)
        let slow = (try await Self.queueStatus(second)["functions"] as? [String: Any])?["slow"] as? [String: Any]
        #expect(slow?["delivered"] as? Int == 20)
        second.signal(SIGTERM)
        _ = try await second.waitForExit()
    }

    @Test func aBacklogCostsDiskNotMemory() async throws {
        let server = try await ServerProcess(config: config)
        // One long invocation per slot keeps everything else waiting.
        let padding = String(repeating: "x", count: 10_000)
        for _ in 0..<2 {
            #expect(try await Self.sendEvent(server.address, "slow", #"{"sleepMs": 60000}"#) == 202)
        }
        let before = try Self.residentMegabytes(server.process.processIdentifier)
        let shared = Shared()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while shared.next.add(1, ordering: .relaxed).oldValue < 10_000 {
                        if (try? await Self.sendEvent(server.address, "slow", #"{"pad": "\#(padding)"}"#)) == 202 {
                            shared.acknowledgedCount.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        let after = try Self.residentMegabytes(server.process.processIdentifier)
        let status = try await Self.queueStatus(server)
        #expect(shared.acknowledgedCount.load(ordering: .relaxed) == 10_000)
        // All 10,000 wait; the two long ones still run unless a loaded machine took past a minute.
        #expect((10_000...10_002).contains(status["events"] as? Int ?? 0), "\(status)")
        #expect((status["bytes"] as? Int ?? 0) > 100_000_000)
        print("RSS with 10,000 events (100 MB) waiting: \(before) MB before, \(after) MB after")
        #expect(after - before < 30, "RSS grew from \(before) MB to \(after) MB")
        server.signal(SIGKILL)
        _ = try await server.waitForExit()
    }

    static func residentMegabytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ")[1]) ?? 0) / 1024
    }

    /// SQLite always, and PostgreSQL when it is installed (always in CI).
    static let storages = ["sqlite"] + (PostgresCluster.isWanted ? ["postgres"] : [])

    @Test(arguments: storages)
    func deadLettersAreListedShownReplayedAndPurgedFromTheCommandLine(storage: String) async throws {
        let config =
            storage == "sqlite"
            ? self.config
            : try Self.config(
                in: directory,
                name: "postgres.json",
                storage: #""path": "pg", "postgres": "\#(try await PostgresCluster.database())""#
            )
        let server = try await ServerProcess(config: config)
        #expect(try await Self.sendEvent(server.address, "fails", #"{"fail": "no luck"}"#) == 202)
        #expect(
            try await server.waitForLog {
                $0.contains("is a dead letter (RetriesExhausted after 2 attempts, InspectError)")
            }
        )
        try await Self.waitUntilEmpty(server)

        let list = try await runGalley(["dlq", "list", "fails", "--config", config])
        #expect(list.status == 0)
        #expect(list.out.contains("RetriesExhausted  2"), "\(list.out)")
        let show = try await runGalley(["dlq", "show", "fails", "1", "--config", config])
        let record = try JSONSerialization.jsonObject(with: show.stdout) as? [String: Any]
        #expect((record?["requestContext"] as? [String: Any])?["approximateInvokeCount"] as? Int == 2)
        #expect((record?["requestPayload"] as? [String: Any])?["fail"] as? String == "no luck")
        let queue = try await runGalley(["queue", "--config", config])
        #expect(queue.out.contains("fails"), "\(queue.out)")
        #expect(queue.out.split(separator: "\n").first?.hasPrefix("FUNCTION  WAITING") == true)
        // The sink got the same record as an event and succeeded.
        let sink = (try await Self.queueStatus(server)["functions"] as? [String: Any])?["sink"] as? [String: Any]
        #expect(sink?["delivered"] as? Int == 1)

        // Replayed while the host runs: it fails twice more and is a dead letter again.
        let replay = try await runGalley(["dlq", "replay", "fails", "--config", config])
        #expect(replay.status == 0, "\(replay.err)")
        #expect(try await server.waitForLog { $0.components(separatedBy: "is a dead letter").count == 3 })
        try await Self.waitUntilEmpty(server)
        let second = try await runGalley(["dlq", "list", "fails", "--config", config])
        #expect(second.out.split(separator: "\n").count == 2, "\(second.out)")

        let purge = try await runGalley(["dlq", "purge", "fails", "--config", config])
        #expect(purge.status == 0)
        #expect(purge.err.contains("deleted 1 dead letters"))
        let missing = try await runGalley(["dlq", "show", "fails", "1", "--config", config])
        #expect(missing.status == 1)
        #expect(missing.err.contains("no dead letter 1 of function 'fails'"))
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }

    @Test(.enabled(if: Tools.isCI || Tools.pythonHas("boto3"), "boto3 is not installed"))
    func boto3GetsStatus202AndThrottlingWhenTheQueueIsFull() async throws {
        let small = try directory.write(
            "small.json",
            """
            {
              "storage": { "path": "small" },
              "queue": { "maxEvents": 2 },
              "functions": { "slow": { "handler": "Inspect", "timeout": 30, "concurrency": 1 } }
            }
            """
        )
        let server = try await ServerProcess(config: small)
        let script = """
            import boto3, json, sys
            from botocore import UNSIGNED
            from botocore.config import Config
            client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                                  config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}))
            codes = []
            for _ in range(3):
                try:
                    codes.append(client.invoke(FunctionName="slow", InvocationType="Event",
                                               Payload=b'{"sleepMs": 20000}')["StatusCode"])
                except client.exceptions.TooManyRequestsException as error:
                    codes.append(type(error).__name__ + ": " + error.response["Error"]["Message"])
            print(json.dumps(codes))
            """
        let output = try await runProcess("python3", ["-c", script, server.address])
        #expect(output.status == 0, "\(output.err)")
        let codes = try JSONSerialization.jsonObject(with: output.stdout) as? [Any]
        #expect(codes?[0] as? Int == 202)
        #expect(codes?[1] as? Int == 202)
        #expect(
            (codes?[2] as? String)?.hasPrefix("TooManyRequestsException: Rate Exceeded. The async queue is full")
                == true,
            "\(output.out)"
        )
        server.signal(SIGKILL)
        _ = try await server.waitForExit()
    }
}
