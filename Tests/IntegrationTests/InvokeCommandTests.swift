import Foundation
import TestSupport
import Testing

/// `galley invoke`, `list` and `events` as a user runs them: a real process, stdin and stdout.
struct InvokeCommandTests {
    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write(
            "runtime.json",
            """
            {
              "functions": {
                "hello": { "handler": "Hello", "environment": { "GREETING": "Hello" }, "routes": ["GET /hello/{name}"] },
                "inspect": { "handler": "Inspect", "timeout": 0.5, "memory": 256, "environment": { "STAGE": "test" } },
                "hog": { "handler": "Inspect", "timeout": 60, "memory": 128 }
              }
            }
            """
        )
    }

    @Test func envVarsOverrideAFunctionsEnvironmentForOneRunOfInvokeAndServe() async throws {
        let overrides = try directory.write(
            "env.json",
            #"{"Parameters": {"GREETING": "Hey"}, "hello": {"GREETING": "Hi"}, "inspect": {"PORT": 8080}}"#
        )
        let invoked = try await runGalley(
            ["invoke", "hello", "--config", config, "--env-vars", overrides],
            stdin: #"{"name": "Ada"}"#
        )
        #expect(invoked.out.contains("Hi, Ada!"), "\(invoked.err)")
        // Without the file, runtime.json's value.
        let plain = try await runGalley(["invoke", "hello", "--config", config], stdin: #"{"name": "Ada"}"#)
        #expect(plain.out.contains("Hello, Ada!"))
        let server = try await ServerProcess(config: config, arguments: ["--port", "0", "--env-vars", overrides])
        let served = try await EnvironmentTests.invoke(server, "hello", #"{"name": "Ada"}"#)
        #expect(served.body.contains("Hi, Ada!"), "\(served.body)")
        // Parameters reach every function; a number is its text.
        let configuration = try await EnvironmentTests.get(server, "/2015-03-31/functions/inspect/configuration")
        #expect(configuration.body.contains("PORT") && configuration.body.contains("GREETING"), "\(configuration.body)")

        let unknown = try directory.write("unknown.json", #"{"nobody": {"A": "b"}}"#)
        let refused = try await runGalley(
            ["invoke", "hello", "--config", config, "--env-vars", unknown],
            stdin: #"{"name": "Ada"}"#
        )
        #expect(refused.status != 0)
        #expect(refused.err.contains("nobody") && refused.err.contains("hello, hog, inspect"), "\(refused.err)")
        let wrong = try directory.write("wrong.json", #"{"hello": {"A": ["list"]}}"#)
        let bad = try await runGalley(["invoke", "hello", "--config", config, "--env-vars", wrong], stdin: "{}")
        #expect(bad.status != 0 && bad.err.contains("hello.A"), "\(bad.err)")
    }

    @Test func crashingHandlerPrintsARuntimeExitErrorAndExitsOne() async throws {
        let output = try await runGalley(["invoke", "inspect", "--config", config], stdin: #"{"crash": true}"#)
        #expect(output.status == 1)
        let object = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        #expect(object?["errorType"] as? String == "Runtime.ExitError")
        #expect((object?["errorMessage"] as? String)?.hasSuffix("signal: illegal instruction") == true)
        #expect(output.err.contains("Fatal error: Inspect was asked to crash"))
        #expect(output.err.contains("Status: error\tError Type: Runtime.ExitError"))
    }

    enum Fault: String, CaseIterable, Sendable {
        case crash, exit, exitZero, spin, memory

        var event: String {
            switch self {
            case .crash: #"{"crash": true}"#
            case .exit: #"{"exit": 3}"#
            case .exitZero: #"{"exit": 0}"#
            case .spin: #"{"spin": true}"#
            case .memory: #"{"allocateMB": 600}"#
            }
        }

        /// Only the spin is about the timeout: every other fault gets a long one, so that a loaded
        /// machine cannot turn it into a timeout.
        var function: String { self == .spin ? "inspect" : "hog" }
    }

    /// A run's answer and REPORT line with what differs between runs (request id, figures) blanked.
    static func normalized(_ output: ProcessOutput) -> (answer: String, report: String) {
        func blank(_ text: String) -> String {
            text.replacing(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, with: "ID")
                .replacing(/(Duration|Max Memory Used): [0-9.]+/) { "\($0.output.1): N" }
        }
        let report = output.err.split(separator: "\n").last { $0.hasPrefix("REPORT") }.map(String.init) ?? ""
        return (blank(output.out), blank(report))
    }

    /// One event runs in the command's own process; `--worker` runs it as serve does. A fault
    /// reads the same to the caller either way.
    @Test(arguments: Fault.allCases)
    func theOneShotProcessReportsEveryFaultAsAWorkerDoes(fault: Fault) async throws {
        let inProcess = try await runGalley(["invoke", fault.function, "--config", config], stdin: fault.event)
        let worker = try await runGalley(
            ["invoke", fault.function, "--worker", "--config", config],
            stdin: fault.event
        )
        #expect(inProcess.status == 1 && worker.status == 1)
        let (answer, report) = Self.normalized(inProcess)
        let (workerAnswer, workerReport) = Self.normalized(worker)
        // Without a memory cgroup a worker cannot tell an allocation failure from a crash.
        if fault == .memory, workerAnswer.contains("Runtime.ExitError") {
            #expect(answer.contains("Runtime.OutOfMemory"), "\(answer)")
            return
        }
        #expect(answer == workerAnswer)
        #expect(report == workerReport)
        #expect(!report.isEmpty)
        // START, END and the function error's line are there too, in the same order.
        for output in [inProcess, worker] {
            let kinds = output.err.split(separator: "\n").compactMap { line in
                ["START", "END", "REPORT"].first { line.hasPrefix($0) }
            }
            #expect(kinds == ["START", "END", "REPORT"], "\(output.err)")
        }
    }

    @Test(arguments: ["crash", "exit"])
    func anInitPhaseFaultReadsTheSameInTheOneShotProcess(fault: String) async throws {
        let file = try directory.write(
            "init-\(fault).json",
            #"{"functions": {"broken": {"handler": "Inspect", "environment": {"INSPECT_INIT": "\#(fault)"}}}}"#
        )
        let inProcess = try await runGalley(["invoke", "broken", "--config", file], stdin: "{}")
        let worker = try await runGalley(["invoke", "broken", "--worker", "--config", file], stdin: "{}")
        #expect(inProcess.status == 1 && worker.status == 1)
        let (answer, report) = Self.normalized(inProcess)
        let (workerAnswer, workerReport) = Self.normalized(worker)
        #expect(answer == workerAnswer)
        #expect(report == workerReport)
        #expect(answer.contains(fault == "crash" ? "signal: illegal instruction" : "exit status 4"), "\(answer)")
    }

    @Test func whatTheHandlerPrintsGoesToStderrAndTheAnswerAloneToStdout() async throws {
        let output = try await runGalley(
            ["invoke", "inspect", "--config", config],
            stdin: #"{"print": "from the handler"}"#
        )
        #expect(output.status == 0)
        #expect(output.err.contains("from the handler"))
        #expect(!output.out.contains("from the handler\n"))
        #expect(try JSONSerialization.jsonObject(with: output.stdout) is [String: Any])
    }

    @Test func spinningHandlerTimesOutAndLeavesNoWorkerBehind() async throws {
        // A marker in the function's environment finds its workers among every process.
        let marker = "GALLEY_TEST_MARK=\(UUID().uuidString)"
        let spinConfig = try directory.write(
            "spin.json",
            #"{"functions": {"spin": {"handler": "Inspect", "timeout": 0.5, "environment": {"GALLEY_TEST_MARK": "\#(marker.dropFirst(17))"}}}}"#
        )
        // A spin never ends: only the timeout answers it (runGalley records a hang).
        let output = try await runGalley(["invoke", "spin", "--config", spinConfig], stdin: #"{"spin": true}"#)
        #expect(output.status == 1)
        #expect(output.out.contains(#""errorType":"Sandbox.Timedout""#))
        #expect(output.out.contains("Task timed out after 0.50 seconds"))
        let processes = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }
        let survivors = processes.filter { pid in
            let environment = (try? Data(contentsOf: URL(filePath: "/proc/\(pid)/environ"))) ?? Data()
            return environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == marker }
        }
        #expect(survivors.isEmpty, "workers outlived galley invoke: \(survivors)")
    }

    @Test func aCommandWhoseFolderIsMissingIsNamedNotItsInterpreter() async throws {
        let missing = try directory.write(
            "missing.json",
            #"{"functions": {"py": {"command": ["python3", "-m", "awslambdaric", "app.handler"], "directory": "nowhere"}}}"#
        )
        let output = try await runGalley(["invoke", "py", "--config", missing], stdin: "{}")
        #expect(output.status == 2)
        #expect(
            output.err == "galley: \(missing): functions.py.directory: no such folder: \(directory.path("nowhere"))\n"
        )
    }

    @Test func eventFromStdinPrintsOnlyTheResponseOnStdout() async throws {
        let output = try await runGalley(["invoke", "hello", "--config", config], stdin: #"{"name":"Ada"}"#)
        #expect(output.status == 0)
        #expect(output.out == #"{"message":"Hello, Ada!"}"# + "\n")
        #expect(output.err.contains("START RequestId: "))
        #expect(output.err.contains("REPORT RequestId: "))
    }

    @Test func eventFromFile() async throws {
        let event = try directory.write("event.json", #"{"name": "Grace"}"#)
        let output = try await runGalley(["invoke", "hello", "--event", event, "--config", config])
        #expect(output.status == 0)
        #expect(output.out == #"{"message":"Hello, Grace!"}"# + "\n")
    }

    @Test func reportLineHasRealMemoryAndConfiguredSize() async throws {
        let output = try await runGalley(["invoke", "inspect", "--config", config], stdin: "{}")
        let report = try #require(output.err.split(separator: "\n").first { $0.hasPrefix("REPORT") })
        #expect(report.contains("\tMemory Size: 256 MB\t"))
        let used = try #require(report.firstMatch(of: /Max Memory Used: (\d+) MB/))
        #expect(Int(used.1)! >= 2, "peak RSS of a Swift process is more than a megabyte")
        #expect(report.contains("Init Duration: "))
    }

    @Test func functionErrorExitsOneWithTheErrorObjectOnStdout() async throws {
        let output = try await runGalley(["invoke", "inspect", "--config", config], stdin: #"{"fail": "broken"}"#)
        #expect(output.status == 1)
        let object = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        #expect(object?["errorType"] as? String == "InspectError")
        #expect(object?["errorMessage"] as? String == "broken")
        #expect(object?["stackTrace"] as? [String] == [])
    }

    @Test func timeoutEndsWithSandboxTimedout() async throws {
        // 10 s of sleep against a 0.5 s timeout: a timeout that did not fire answers with the echo.
        let output = try await runGalley(["invoke", "inspect", "--config", config], stdin: #"{"sleepMs": 10000}"#)
        #expect(output.status == 1)
        let object = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        #expect(object?["errorType"] as? String == "Sandbox.Timedout")
        let message = try #require(object?["errorMessage"] as? String)
        #expect(message.wholeMatch(of: /RequestId: [-0-9a-f]{36} Error: Task timed out after 0\.50 seconds/) != nil)
        #expect(output.err.contains("Task timed out after 0.50 seconds"))
        #expect(output.err.contains("Status: timeout"))
    }

    @Test func environmentAndFunctionNameReachTheHandler() async throws {
        let output = try await runGalley(["invoke", "inspect", "--config", config], stdin: #"{"x": [1, 2]}"#)
        let object = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        #expect(object?["functionName"] as? String == "inspect")
        #expect(object?["environment"] as? [String: String] == ["STAGE": "test"])
        #expect((object?["event"] as? [String: Any])?["x"] as? [Int] == [1, 2])
        let remaining = try #require(object?["remainingTimeMs"] as? Int)
        #expect(remaining > 0 && remaining <= 500)
    }

    @Test func unknownFunctionIsAUsageErrorListingTheDeployedOnes() async throws {
        let output = try await runGalley(["invoke", "nope", "--config", config], stdin: "{}")
        #expect(output.status == 2)
        #expect(output.out.isEmpty)
        #expect(
            output.err == "galley: no function named 'nope' in \(config); deployed functions: hello, hog, inspect\n"
        )
    }

    @Test func malformedEventIsRefusedWithItsPosition() async throws {
        let output = try await runGalley(["invoke", "hello", "--config", config], stdin: "{\"name\": \"Ada\",\n oops}")
        #expect(output.status == 2)
        #expect(output.out.isEmpty)
        #expect(output.err.hasPrefix("galley: the event on stdin is not valid JSON: line 2, column 2:"))
        #expect(!output.err.contains("START"), "nothing ran")
    }

    @Test func missingEventFileIsNamed() async throws {
        let output = try await runGalley(["invoke", "hello", "--event", "nope.json", "--config", config])
        #expect(output.status == 2)
        #expect(output.err == "galley: cannot read the event file 'nope.json' (no such file)\n")
    }

    @Test func invalidConfigurationIsOneLineAndExitTwo() async throws {
        let bad = try directory.write("bad.json", #"{"functions": {"hello": {"handler": "Hello", "timeout": -3}}}"#)
        let output = try await runGalley(["invoke", "hello", "--config", bad], stdin: "{}")
        #expect(output.status == 2)
        #expect(output.err == "galley: \(bad): functions.hello.timeout: must be greater than 0 seconds, found -3\n")
    }

    @Test func missingConfigurationIsNamed() async throws {
        let empty = try TemporaryDirectory()
        let output = try await runGalley(["list"], in: empty)
        #expect(output.status == 2)
        #expect(output.err == "galley: runtime.json: cannot read the file (no such file)\n")
    }

    @Test func usageErrorExitsWithAtLeastTwo() async throws {
        let output = try await runGalley(["invoke", "--config", config])
        #expect(output.status >= 2)
        #expect(output.err.contains("--lines"))
    }

    @Test func linesReuseOneWarmEnvironment() async throws {
        let output = try await runGalley(
            ["invoke", "hello", "--lines", "--config", config],
            stdin: "{\"name\":\"A\"}\n\n{\"name\":\"B\"}\n{\"name\":3}\nnot json\n{\"name\":\"C\"}"
        )
        let lines = output.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines[0] == #"{"message":"Hello, A!"}"#)
        #expect(lines[1] == #"{"message":"Hello, B!"}"#)
        #expect(lines[2].contains(#""errorType":"Runtime.UnmarshalError""#))
        #expect(lines[3].contains(#""errorType":"InvalidRequestContentException""#))
        #expect(lines[4] == #"{"message":"Hello, C!"}"#)
        #expect(output.status == 1, "a failed line makes the exit status 1")
        let reports = output.err.split(separator: "\n").filter { $0.hasPrefix("REPORT") }
        #expect(reports.count == 4)
        #expect(reports.filter { $0.contains("Init Duration") }.count == 1, "init ran once")
    }

    @Test func mixedStreamAnswersEachEnvelopeInOrder() async throws {
        let input = [
            #"{"function": "hello", "event": {"name": "Ada"}}"#,
            #"{"function": "inspect", "event": {"fail": "no"}}"#,
            #"{"function": "ghost", "event": {}}"#,
            #"{"event": {}}"#,
            "{broken",
            #"{"function": "hello"}"#,
        ].joined(separator: "\n")
        let output = try await runGalley(["invoke", "--lines", "--config", config], stdin: input)
        let answers = try output.out.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(answers.count == 6)
        #expect(answers[0]["function"] as? String == "hello")
        #expect((answers[0]["result"] as? [String: String]) == ["message": "Hello, Ada!"])
        #expect((answers[0]["requestId"] as? String)?.count == 36)
        #expect((answers[1]["error"] as? [String: Any])?["errorType"] as? String == "InspectError")
        #expect((answers[2]["error"] as? [String: Any])?["errorType"] as? String == "ResourceNotFoundException")
        #expect(answers[3]["line"] as? Int == 4)
        #expect((answers[3]["error"] as? [String: Any])?["errorType"] as? String == "InvalidLine")
        #expect(answers[4]["line"] as? Int == 5)
        #expect((answers[5]["result"] as? [String: String]) == ["message": "Hello, world!"])
        #expect(output.status == 1)
    }

    @Test func listShowsEachFunction() async throws {
        let output = try await runGalley(["list", "--config", config])
        #expect(output.status == 0)
        let lines = output.out.split(separator: "\n")
        #expect(lines.first?.hasPrefix("FUNCTION") == true)
        #expect(lines.contains { $0.hasPrefix("hello") && $0.contains("Hello") && $0.contains("GET /hello/{name}") })
        #expect(lines.contains { $0.hasPrefix("inspect") && $0.contains("0.5s") && $0.contains("256 MB") })
    }

    @Test func httpEventMatchesTheConfiguredRoute() async throws {
        let output = try await runGalley([
            "events", "http", "--method", "GET", "--path", "/hello/Ada?x=1", "--header", "X-Id: 7", "--config", config,
        ])
        #expect(output.status == 0)
        let event = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
        #expect(event?["version"] as? String == "2.0")
        #expect(event?["routeKey"] as? String == "GET /hello/{name}")
        #expect(event?["pathParameters"] as? [String: String] == ["name": "Ada"])
        #expect(event?["queryStringParameters"] as? [String: String] == ["x": "1"])
        #expect((event?["headers"] as? [String: String])?["x-id"] == "7")
        // The event file works as an event for the function behind that route.
        let file = try directory.write("http.json", output.out)
        let invoked = try await runGalley(["invoke", "hello", "--event", file, "--config", config])
        #expect(invoked.out == #"{"message":"Hello, Ada!"}"# + "\n")
    }
}
