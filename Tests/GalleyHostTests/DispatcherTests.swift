import Foundation
import Galley
import Logging
import Synchronization
import Testing

@testable import GalleyHost

/// Collects log lines in memory.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func writer(_ format: LogWriter.Format = .text) -> LogWriter {
        LogWriter(format: format) { line in self.lines.withLock { $0.append(line) } }
    }

    /// A swift-log handler whose messages land here, each as its level and message.
    func handler() -> some LogHandler { Handler(lines: self) }

    private struct Handler: LogHandler {
        let lines: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.lines.withLock { $0.append("\(event.level) \(event.message)") }
        }
    }
}

struct DispatcherTests {
    /// Counts init phases; sleeps, ignoring cancellation, when asked.
    struct Sleeper: Handler {
        struct Event: Decodable {
            var sleepMs: Int?
            /// Names the invocation in ``finished`` and lets ``released`` end its sleep early.
            var mark: String?
        }
        struct Output: Encodable { var slept: Int }
        static let inits = Mutex(0)
        static let finished = Mutex<Set<String>>([])
        static let released = Mutex<Set<String>>([])

        init(context: InitContext) {
            Self.inits.withLock { $0 += 1 }
            context.logger.info("init")
        }

        func handle(_ event: Event, context: Context) async throws -> Output {
            let sleep = event.sleepMs ?? 0
            context.logger.info("sleeping", metadata: ["ms": "\(sleep)"])
            // A stubborn handler: it does not stop when cancelled.
            let until = ContinuousClock.now + .milliseconds(sleep)
            let mark = event.mark ?? ""
            while ContinuousClock.now < until && !Self.released.withLock({ $0.contains(mark) }) {
                try? await Task.sleep(for: .milliseconds(5))
            }
            _ = Self.finished.withLock { $0.insert(mark) }
            return Output(slept: sleep)
        }
    }

    /// A minute unless a test is about timeouts: a busy machine must not turn an ordinary call into one.
    func makeDispatcher(timeout: Double = 60, concurrency: Int = 10, log: LogLines) throws -> Dispatcher {
        var function = FunctionConfiguration(handler: "Sleeper")
        function.isolation = .inline
        function.timeout = timeout
        function.memory = 256
        function.concurrency = concurrency
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["sleeper": function]),
            catalog: [.handler("Sleeper", Sleeper.self)],
            file: "runtime.json"
        )
        return Dispatcher(deployment: deployment, logWriter: log.writer())
    }

    func payload(_ text: String) -> Data { Data(text.utf8) }

    @Test func aFunctionErrorIsLoggedOnceInItsBlock() async throws {
        let log = LogLines()
        var function = FunctionConfiguration(handler: "Fail")
        function.isolation = .inline
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["fail": function]),
            catalog: [
                .closure("Fail") { (_: [String: String], _: Context) -> String in
                    throw FunctionError("no luck\nREPORT RequestId: forged", type: "LuckError")
                }
            ],
            file: "runtime.json"
        )
        let dispatcher = Dispatcher(deployment: deployment, logWriter: log.writer())
        let result = try await dispatcher.invoke(Invocation(function: "fail", payload: payload("{}")))
        #expect(result.isFunctionError)
        let errors = log.all.filter { $0.contains("\tERROR\t") }
        #expect(errors.count == 1, "\(log.all)")
        #expect(
            errors.first?.hasSuffix(
                "\t\(result.requestID)\tERROR\tInvoke Error LuckError: no luck REPORT RequestId: forged"
            ) == true
        )
        // It comes before END, inside the invocation's block; the forged line stays on it.
        #expect(log.all.firstIndex { $0.hasPrefix("END") }! > log.all.firstIndex { $0.contains("\tERROR\t") }!)
        #expect(log.all.filter { $0.hasPrefix("REPORT") }.count == 1)
    }

    @Test func aMultiLineLogRecordIsOneIndentedBlock() async throws {
        let log = LogLines()
        var function = FunctionConfiguration(handler: "Chatty")
        function.isolation = .inline
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["chatty": function]),
            catalog: [
                .closure("Chatty") { (_: [String: String], context: Context) -> String in
                    context.logger.info("done\nREPORT RequestId: forged Duration: 1.00 ms\r\nEND RequestId: forged")
                    return "ok"
                }
            ],
            file: "runtime.json"
        )
        let dispatcher = Dispatcher(deployment: deployment, logWriter: log.writer())
        let result = try await dispatcher.invoke(Invocation(function: "chatty", payload: payload("{}")))
        // What stderr shows: the written strings, split into lines.
        let lines = log.all.joined(separator: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains { $0.hasSuffix("\t\(result.requestID)\tINFO\tdone") })
        #expect(lines.contains("\tREPORT RequestId: forged Duration: 1.00 ms"))
        #expect(lines.contains("\tEND RequestId: forged"))
        #expect(lines.filter { $0.hasPrefix("REPORT") }.count == 1)
        #expect(lines.filter { $0.hasPrefix("END") } == ["END RequestId: \(result.requestID)"])
    }

    @Test func reportLineHasLambdaFields() async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(log: log)
        let result = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))
        #expect(!result.isFunctionError)
        let lines = log.all
        // Init-phase lines come first, as in Lambda; then the invocation's own block.
        #expect(lines.first?.hasSuffix("\tINFO\tinit") == true)
        #expect(lines.dropFirst().first == "START RequestId: \(result.requestID) Version: $LATEST")
        #expect(lines.contains("END RequestId: \(result.requestID)"))
        let report = try #require(lines.last)
        let fields = report.split(separator: "\t").map(String.init)
        #expect(fields[0] == "REPORT RequestId: \(result.requestID)")
        #expect(fields[1].wholeMatch(of: /Duration: \d+\.\d\d ms/) != nil)
        #expect(fields[2].wholeMatch(of: /Billed Duration: [1-9]\d* ms/) != nil)
        #expect(fields[3] == "Memory Size: 256 MB")
        let used = try #require(fields[4].wholeMatch(of: /Max Memory Used: (\d+) MB/))
        #expect(Int(used.1)! > 1)
        #expect(fields[5].wholeMatch(of: /Init Duration: \d+\.\d\d ms/) != nil)
        #expect(report.hasSuffix("\t"))
    }

    @Test(arguments: [
        (0.004, "0.00"), (0.05, "0.05"), (1.05, "1.05"), (12.5, "12.50"), (2005.837, "2005.84"), (0.999, "1.00"),
        (-0.5, "-0.50"), (-3.07, "-3.07"),
    ])
    func durationsHaveTwoDecimalsAsLambdaWritesThem(milliseconds: Double, text: String) {
        #expect(Milliseconds.twoDecimals(milliseconds) == text)
        var appended = Array("Duration: ".utf8)
        Milliseconds.appendTwoDecimals(milliseconds, to: &appended)
        #expect(String(decoding: appended, as: UTF8.self) == "Duration: " + text)
    }

    @Test func handlerLogLinesCarryTheRequestID() async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(log: log)
        let result = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))
        let line = try #require(log.all.first { $0.contains("sleeping") })
        #expect(
            line.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[-0-9a-f]{36}\tINFO\tsleeping ms=0/) != nil
        )
        #expect(line.contains(result.requestID))
    }

    @Test func initRunsOncePerEnvironment() async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(log: log)
        for _ in 0..<3 { _ = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}"))) }
        let reports = log.all.filter { $0.hasPrefix("REPORT") }
        #expect(reports.count == 3)
        #expect(reports.filter { $0.contains("Init Duration") }.count == 1)
        // This dispatcher's own log (the static counter is shared with tests running in parallel).
        #expect(log.all.filter { $0.hasSuffix("\tINFO\tinit") }.count == 1)
    }

    @Test func timeoutEndsTheInvocationOnTimeAndResetsTheEnvironment() async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(timeout: 0.2, log: log)
        _ = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))  // warm it up
        // A handler that ignores cancellation and would run for a minute: the caller is answered
        // while it still runs (an order, not a time, so that a loaded machine cannot fail it).
        let mark = UUID().uuidString
        let result = try await dispatcher.invoke(
            Invocation(function: "sleeper", payload: payload(#"{"sleepMs": 60000, "mark": "\#(mark)"}"#))
        )
        #expect(
            !Sleeper.finished.withLock { $0.contains(mark) },
            "the caller waited for a handler that ignores cancellation"
        )
        Sleeper.released.withLock { _ = $0.insert(mark) }
        #expect(result.isFunctionError)
        let object = try JSONDecoder().decode(ErrorObject.self, from: result.payload)
        #expect(object.errorType == "Sandbox.Timedout")
        #expect(object.errorMessage == "RequestId: \(result.requestID) Error: Task timed out after 0.20 seconds")
        let lines = log.all
        #expect(lines.contains { $0.hasSuffix("\(result.requestID) Task timed out after 0.20 seconds") })
        #expect(
            lines.contains { $0.hasPrefix("REPORT RequestId: \(result.requestID)") && $0.contains("Status: timeout") }
        )
        // The next invocation is a cold start.
        let next = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))
        #expect(
            log.all.contains { $0.hasPrefix("REPORT RequestId: \(next.requestID)") && $0.contains("Init Duration") }
        )
    }

    @Test func concurrencyLimitThrottlesAtOnce() async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(timeout: 5, concurrency: 1, log: log)
        let slow = Task {
            try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload(#"{"sleepMs": 400}"#)))
        }
        // Wait until the slow one holds the only slot.
        let deadline = ContinuousClock.now + .seconds(5)
        while !log.all.contains(where: { $0.contains("sleeping ms=400") }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        do {
            _ = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))
            Issue.record("the second invocation was not throttled")
        } catch {
            #expect(error.code == .tooManyRequests)
            #expect(error.reason == "ReservedFunctionConcurrentInvocationLimitExceeded")
        }
        #expect(try await slow.value.isFunctionError == false)
    }

    @Test(arguments: [
        ("nope", "{}", InvokeError.Code.functionNotFound),
        ("sleeper", "{not json", .invalidRequestContent),
        ("sleeper", String(repeating: " ", count: 6_291_457), .requestTooLarge),
    ])
    func refusedInvocationsRunNothing(function: String, body: String, code: InvokeError.Code) async throws {
        let log = LogLines()
        let dispatcher = try makeDispatcher(log: log)
        do {
            _ = try await dispatcher.invoke(Invocation(function: function, payload: payload(body)))
            Issue.record("expected \(code)")
        } catch {
            #expect(error.code == code)
        }
        #expect(log.all.isEmpty)
    }

    @Test func asyncPayloadLimitIsOneMegabyte() async throws {
        let dispatcher = try makeDispatcher(log: LogLines())
        let body = "[" + String(repeating: "1,", count: 600_000) + "1]"
        await #expect(throws: InvokeError.self) {
            try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload(body), kind: .event))
        }
    }

    @Test func logTailIsTheLastFourKilobytesInBase64() async throws {
        let dispatcher = try makeDispatcher(log: LogLines())
        let result = try await dispatcher.invoke(
            Invocation(function: "sleeper", payload: payload("{}"), wantsLogTail: true)
        )
        let tail = try #require(result.logTail.flatMap { Data(base64Encoded: $0) })
        let text = String(decoding: tail, as: UTF8.self)
        #expect(tail.count <= 4096)
        #expect(text.hasPrefix("START RequestId: \(result.requestID)"))
        #expect(text.contains("REPORT RequestId: \(result.requestID)"))
    }

    @Test func jsonLogFormatHasTheSameFields() async throws {
        let log = LogLines()
        var function = FunctionConfiguration(handler: "Sleeper")
        function.isolation = .inline
        function.memory = 512
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["sleeper": function]),
            catalog: [.handler("Sleeper", Sleeper.self)],
            file: "runtime.json"
        )
        let dispatcher = Dispatcher(deployment: deployment, logWriter: log.writer(.json))
        let result = try await dispatcher.invoke(Invocation(function: "sleeper", payload: payload("{}")))
        let objects = try log.all.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(objects.first { $0["type"] != nil }?["type"] as? String == "platform.start")
        let report = try #require(objects.last)
        #expect(report["type"] as? String == "platform.report")
        let record = try #require(report["record"] as? [String: Any])
        #expect(record["requestId"] as? String == result.requestID)
        let metrics = try #require(record["metrics"] as? [String: Any])
        #expect(metrics["memorySizeMB"] as? Int == 512)
        #expect(metrics["durationMs"] != nil && metrics["billedDurationMs"] != nil && metrics["maxMemoryUsedMB"] != nil)
        #expect(metrics["initDurationMs"] != nil)
        let app = try #require(objects.first { $0["message"] as? String == "sleeping" })
        #expect(app["requestId"] as? String == result.requestID)
        #expect(app["level"] as? String == "INFO")
    }
}
