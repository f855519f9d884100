import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `/_galley/metrics` and `galley logs` against a live `galley serve`.
@Suite(.serialized)
struct ObservabilityTests {
    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write(
            "runtime.json",
            """
            {
              "storage": { "path": "data" },
              "functions": {
                "hello": { "handler": "Hello" },
                "faulty": { "handler": "Inspect", "timeout": 0.3 },
                "single": { "handler": "Inspect", "timeout": 120, "concurrency": 1 },
                "queued": { "handler": "Hello" },
                "doomed": { "handler": "Inspect", "retries": 0 },
                "talker": { "handler": "Inspect", "timeout": 120 },
                "counter": { "handler": "Counter" }
              }
            }
            """
        )
    }

    /// The scrape, parsed by `prometheus_client`'s own text parser: `name{labels}` → value.
    static func scrape(_ server: ServerProcess) async throws -> [String: Double] {
        let text = try await EnvironmentTests.get(server, "/_galley/metrics").body
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            samples = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for sample in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    samples[f"{sample.name}{{{labels}}}"] = sample.value
            print(json.dumps(samples))
            """
        let parsed = try await runProcess("python3", ["-c", script], stdin: text)
        #expect(parsed.status == 0, "\(parsed.err)")
        return try #require(try JSONSerialization.jsonObject(with: parsed.stdout) as? [String: Double])
    }

    @Test(.enabled(if: Tools.isCI || Tools.pythonHas("prometheus_client"), "prometheus_client is not installed"))
    func aScrapeCountsEveryKindOfInvocation() async throws {
        let server = try await ServerProcess(config: config)
        for _ in 0..<3 { _ = try await EnvironmentTests.invoke(server, "hello", #"{"name": "Ada"}"#) }
        // Store calls from a worker process, through the host.
        for _ in 0..<4 { _ = try await EnvironmentTests.invoke(server, "counter", #"{"name": "visits"}"#) }
        for _ in 0..<2 { _ = try await EnvironmentTests.invoke(server, "faulty", #"{"fail": "no"}"#) }
        _ = try await EnvironmentTests.invoke(server, "faulty", #"{"spin": true}"#)
        // A throttle: the one environment of `single` is busy (seen running), the next call is refused.
        let busy = Task { try await EnvironmentTests.invoke(server, "single", #"{"sleepMs": 3000}"#) }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let functions = try await EnvironmentTests.get(server, "/_galley/functions").body
            if functions.contains(#""running":1"#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let refused = try await EnvironmentTests.invoke(server, "single", "{}")
        #expect(refused.status == 429)
        _ = try await busy.value
        // Two events accepted; one that fails with no retry left becomes a dead letter.
        for _ in 0..<2 { _ = try await Self.event(server, "queued", "{}") }
        _ = try await Self.event(server, "doomed", #"{"fail": "always"}"#)
        let settled = ContinuousClock.now + .seconds(60)
        var samples: [String: Double] = [:]
        while ContinuousClock.now < settled {
            samples = try await Self.scrape(server)
            if samples[#"galley_invocations_total{function="queued"}"#] == 2,
                samples[#"galley_async_events_dead_lettered_total{function="doomed"}"#] == 1
            {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(samples[#"galley_invocations_total{function="hello"}"#] == 3)
        #expect(samples[#"galley_duration_seconds_count{function="hello"}"#] == 3)
        #expect(samples[#"galley_init_duration_seconds_count{function="hello"}"#] == 1)
        #expect(samples[#"galley_invocations_total{function="faulty"}"#] == 3)
        #expect(samples[#"galley_errors_total{error_type="InspectError",function="faulty"}"#] == 2)
        #expect(samples[#"galley_errors_total{error_type="Sandbox.Timedout",function="faulty"}"#] == 1)
        #expect(samples[#"galley_duration_seconds_count{function="faulty"}"#] == 3)
        #expect(samples[#"galley_throttles_total{function="single"}"#] == 1)
        #expect(samples[#"galley_invocations_total{function="single"}"#] == 1)
        #expect(samples[#"galley_async_events_received_total{function="queued"}"#] == 2)
        #expect(samples[#"galley_invocations_total{function="queued"}"#] == 2)
        #expect(samples[#"galley_async_events_received_total{function="doomed"}"#] == 1)
        #expect(samples[#"galley_async_events_dead_lettered_total{function="doomed"}"#] == 1)
        #expect(samples[#"galley_concurrent_executions{function="hello"}"#] == 0)
        #expect(samples[#"galley_environments{function="hello",state="warm"}"#] == 1)
        #expect(samples[#"galley_async_queue_depth{function="queued"}"#] ?? 0 == 0)
        #expect((samples[#"galley_http_requests_total{status="429"}"#] ?? 0) == 1)
        #expect((samples[#"galley_http_requests_total{status="202"}"#] ?? 0) == 3)
        #expect(samples[#"galley_store_operations_total{namespace="counter",operation="increment",outcome="ok"}"#] == 4)
        #expect(samples[#"galley_store_operation_duration_seconds_count{operation="increment"}"#] == 4)
    }

    @Test func logsFollowShowsALineWhileItsInvocationStillRuns() async throws {
        let server = try await ServerProcess(config: config)
        let follower = Process()
        follower.executableURL = Binaries.galley
        follower.arguments = ["logs", "talker", "--follow", "--url", server.address]
        let output = Pipe()
        follower.standardOutput = output
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        defer { if follower.isRunning { follower.terminate() } }
        let seen = ServerProcess.Buffer()
        Thread.detachNewThread {
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { return }
                seen.append(chunk)
            }
        }
        // The follower is subscribed once its request reached the host: wait for a line of its own.
        let ready = ContinuousClock.now + .seconds(30)
        while !seen.text.contains("warm-up") && ContinuousClock.now < ready {
            _ = try await EnvironmentTests.invoke(server, "talker", #"{"log": "warm-up"}"#)
            try await Task.sleep(for: .milliseconds(100))
        }
        let marker = "line-\(UUID().uuidString)"
        // The invocation logs, then sleeps a minute: its END can only come long after the line.
        let running = Task {
            try await EnvironmentTests.invoke(server, "talker", #"{"log": "\#(marker)", "sleepMs": 60000}"#)
        }
        let deadline = ContinuousClock.now + .seconds(50)
        while !seen.text.contains(marker) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let text = seen.text
        #expect(text.contains(marker))
        let requestID = text.split(separator: "\n").first { $0.contains(marker) }?.split(separator: "\t").dropFirst()
            .first
        let id = try #require(requestID.map(String.init))
        #expect(text.contains("START RequestId: \(id)"))
        #expect(!text.contains("END RequestId: \(id)"), "the line came only with the invocation's end")
        // Not waited for: the host goes, and the sleeping invocation with it.
        kill(server.process.processIdentifier, SIGKILL)
        _ = try? await running.value
    }

    @Test func aFeedForAnUnknownFunctionIsRefusedNamingTheDeployedOnes() async throws {
        let server = try await ServerProcess(config: config)
        let output = try await runGalley(["logs", "nope", "--url", server.address])
        #expect(output.status == 2)
        #expect(output.err.contains("no function named 'nope'"))
        #expect(output.err.contains("hello"))
    }

    @Test func aCallersTraceHeaderReachesTheFunctionInItsWorker() async throws {
        let server = try await ServerProcess(config: config)
        var request = URLRequest(url: URL(string: "\(server.address)/2015-03-31/functions/talker/invocations")!)
        request.httpMethod = "POST"
        request.httpBody = Data("{}".utf8)
        request.setValue("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", forHTTPHeaderField: "traceparent")
        let (data, _) = try await URLSession.shared.data(for: request)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(
            object?["traceId"] as? String
                == "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1",
            "\(String(decoding: data, as: UTF8.self))"
        )
    }

    static func event(_ server: ServerProcess, _ function: String, _ payload: String) async throws -> Int {
        var request = URLRequest(url: URL(string: "\(server.address)/2015-03-31/functions/\(function)/invocations")!)
        request.httpMethod = "POST"
        request.httpBody = Data(payload.utf8)
        request.setValue("Event", forHTTPHeaderField: "X-Amz-Invocation-Type")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }
}
