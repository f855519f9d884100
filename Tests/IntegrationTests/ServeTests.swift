import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `galley serve` on port 0 driven by real clients: the aws CLI, boto3, curl and nginx.
@Suite(.serialized)
struct ServeTests {
    let directory: TemporaryDirectory
    let config: String

    static let configuration = """
        {
          "storage": { "path": "data" },
          "functions": {
            "hello": { "handler": "Hello", "routes": ["GET /hello/{name}"] },
            "counter": { "handler": "Counter", "concurrency": 50, "routes": ["POST /count/{name}", "GET /count/{name}"] },
            "inspect": { "handler": "Inspect", "concurrency": 1, "timeout": 10, "routes": ["ANY /inspect/{proxy+}"] },
            "sleepy": { "handler": "Inspect", "concurrency": 20, "timeout": 10 }
          }
        }
        """

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write("runtime.json", Self.configuration)
    }

    /// The aws CLI's environment: dummy keys (it signs, Galley ignores the signature) and no user config.
    var awsEnvironment: [String: String] {
        [
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": directory.path("aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": directory.path("aws-credentials"),
        ]
    }

    /// Whether `pid` still runs (a zombie waiting for its reaper has ended).
    static func runs(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !stat.split(separator: ")").last!.hasPrefix(" Z")
    }

    @Test func aBuildOfServeWatchEndsWhenItsWatcherIsKilled() async throws {
        // A stand-in watcher: a shell that starts a supervised build, says its pid, and waits.
        let socket = directory.path("build.sock")
        let shell = Process()
        shell.executableURL = URL(filePath: "/bin/sh")
        shell.arguments = [
            "-c",
            "'\(Binaries.galley.path)' serve --config '\(config)' --socket '\(socket)' --supervised --build 1 >/dev/null 2>&1 & echo $!; wait",
        ]
        let output = Pipe()
        shell.standardOutput = output
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        let build = try #require(pid_t(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        let started = ContinuousClock.now + .seconds(60)
        while !FileManager.default.fileExists(atPath: socket), ContinuousClock.now < started {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(Self.runs(build))
        // Not waited for: Foundation's wait would also wait for the orphan.
        kill(shell.processIdentifier, SIGKILL)
        // Orphaned, it notices within a second or two and stops.
        let deadline = ContinuousClock.now + .seconds(30)
        while Self.runs(build), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!Self.runs(build), "the build outlived its watcher")
        if Self.runs(build) { kill(build, SIGKILL) }
    }

    @Test(.enabled(if: Tools.usable("aws"), "the aws CLI is not installed"))
    func awsCLIInvokesListsAndGets() async throws {
        let server = try await ServerProcess(config: config)
        let endpoint = ["--endpoint-url", server.address]
        let out = directory.path("out.json")
        let invoke = try await runProcess(
            "aws",
            [
                "lambda", "invoke", "--function-name", "hello", "--payload", #"{"name":"CLI"}"#, "--log-type", "Tail",
                out,
            ] + endpoint,
            environment: awsEnvironment
        )
        #expect(invoke.status == 0, "\(invoke.err)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == #"{"message":"Hello, CLI!"}"#)
        let summary = try JSONSerialization.jsonObject(with: invoke.stdout) as? [String: Any]
        #expect(summary?["StatusCode"] as? Int == 200)
        #expect(summary?["ExecutedVersion"] as? String == "$LATEST")
        let log = String(decoding: Data(base64Encoded: summary?["LogResult"] as? String ?? "") ?? Data(), as: UTF8.self)
        #expect(log.hasPrefix("START RequestId: ") && log.contains("REPORT RequestId: "))

        let failed = try await runProcess(
            "aws",
            ["lambda", "invoke", "--function-name", "inspect", "--payload", #"{"fail":"nope"}"#, out] + endpoint,
            environment: awsEnvironment
        )
        #expect(
            (try JSONSerialization.jsonObject(with: failed.stdout) as? [String: Any])?["FunctionError"] as? String
                == "Unhandled"
        )

        let list = try await runProcess("aws", ["lambda", "list-functions"] + endpoint, environment: awsEnvironment)
        let functions =
            (try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any])?["Functions"] as? [[String: Any]]
        #expect(functions?.compactMap { $0["FunctionName"] as? String } == ["counter", "hello", "inspect", "sleepy"])

        let get = try await runProcess(
            "aws",
            ["lambda", "get-function", "--function-name", "hello"] + endpoint,
            environment: awsEnvironment
        )
        let configuration =
            (try JSONSerialization.jsonObject(with: get.stdout) as? [String: Any])?["Configuration"] as? [String: Any]
        #expect(configuration?["FunctionArn"] as? String == "arn:aws:lambda:us-east-1:123456789012:function:hello")

        let missing = try await runProcess(
            "aws",
            ["lambda", "invoke", "--function-name", "nope", out] + endpoint,
            environment: awsEnvironment
        )
        #expect(missing.status == 255)
        #expect(
            missing.err.contains(
                "An error occurred (ResourceNotFoundException) when calling the Invoke operation: Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
            )
        )
        // The request ids in the log are the ones the caller got.
        let requestIDs = server.stderr.matches(of: /START RequestId: ([-0-9a-f]{36})/).map { String($0.1) }
        #expect(requestIDs.count >= 2)
    }

    @Test(.enabled(if: Tools.isCI || Tools.pythonHas("boto3"), "boto3 is not installed"))
    func boto3MapsEveryErrorToItsExceptionClass() async throws {
        let server = try await ServerProcess(config: config)
        let script = """
            import base64, json, sys, threading
            import boto3
            from botocore.config import Config
            lam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test",
                               config=Config(retries={"max_attempts": 0, "mode": "standard"}))
            out = {}
            r = lam.invoke(FunctionName="hello", Payload=b'{"name": "Boto"}', LogType="Tail")
            out["payload"] = json.loads(r["Payload"].read())
            out["status"] = r["StatusCode"]
            out["log"] = base64.b64decode(r["LogResult"]).decode()
            out["requestId"] = r["ResponseMetadata"]["RequestId"]
            def expect(name, call):
                try:
                    call()
                    out[name] = "no error"
                except lam.exceptions.ClientError as e:
                    out[name] = {"class": type(e).__name__, "code": e.response["Error"]["Code"],
                                 "message": e.response["Error"].get("Message"), "reason": e.response.get("Reason"),
                                 "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
            expect("notFound", lambda: lam.invoke(FunctionName="nope", Payload=b"{}"))
            expect("badJSON", lambda: lam.invoke(FunctionName="hello", Payload=b"{not json"))
            expect("tooLarge", lambda: lam.invoke(FunctionName="hello", Payload=b'"' + b"x" * (7 * 1024 * 1024) + b'"'))
            import time
            def slow_call():
                # The probes below may take the one slot first (a cold start is slower with a worker): retry.
                while True:
                    try:
                        return lam.invoke(FunctionName="inspect", Payload=b'{"sleepMs": 2500}')
                    except lam.exceptions.TooManyRequestsException:
                        time.sleep(0.01)
            slow = threading.Thread(target=slow_call)
            slow.start()
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    lam.invoke(FunctionName="inspect", Payload=b"{}")
                    time.sleep(0.02)
                except lam.exceptions.TooManyRequestsException:
                    break
            expect("throttled", lambda: lam.invoke(FunctionName="inspect", Payload=b"{}"))
            slow.join()
            counts, lock = [], threading.Lock()
            def hammer():
                client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                                      aws_access_key_id="test", aws_secret_access_key="test")
                for _ in range(25):
                    r = client.invoke(FunctionName="counter", Payload=b'{"name": "hammered"}')
                    with lock:
                        counts.append(json.loads(r["Payload"].read())["count"])
            threads = [threading.Thread(target=hammer) for _ in range(16)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            out["counts"] = sorted(counts)
            print(json.dumps(out))
            """
        let file = try directory.write("boto.py", script)
        let run = try await runProcess("python3", [file, server.address], timeout: .seconds(120))
        #expect(run.status == 0, "\(run.err)")
        let out = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
        #expect(out["payload"] as? [String: String] == ["message": "Hello, Boto!"])
        #expect(out["status"] as? Int == 200)
        let requestID = try #require(out["requestId"] as? String)
        #expect((out["log"] as? String)?.hasPrefix("START RequestId: \(requestID)") == true)
        func error(_ name: String) -> [String: Any] { out[name] as? [String: Any] ?? [:] }
        #expect(error("notFound")["class"] as? String == "ResourceNotFoundException")
        #expect(error("notFound")["status"] as? Int == 404)
        #expect(error("badJSON")["class"] as? String == "InvalidRequestContentException")
        #expect(error("tooLarge")["class"] as? String == "RequestTooLargeException")
        #expect(error("tooLarge")["status"] as? Int == 413)
        #expect(error("throttled")["class"] as? String == "TooManyRequestsException")
        #expect(error("throttled")["reason"] as? String == "ReservedFunctionConcurrentInvocationLimitExceeded")
        #expect(out["counts"] as? [Int] == Array(1...400), "16 threads × 25 increments, none lost or repeated")
    }

    @Test(.enabled(if: Tools.usable("nginx", "curl"), "nginx or curl is not installed"))
    func nginxInFrontForwardsTheClientAddress() async throws {
        let socket = directory.path("galley.sock")
        let server = try await ServerProcess(config: config, arguments: ["--socket", socket, "--socket-mode", "666"])
        #expect(server.address == "unix:\(socket)")
        let nginx = try await Nginx(in: directory, socket: socket)
        defer { stop(nginx.process) }
        let base = nginx.base
        let hello = try await curl(["\(base)/hello/Nginx"])
        #expect(hello.out == #"{"message":"Hello, Nginx!"}"#)
        let inspected = try await curl([
            "-H", "Host: api.example.com", "-H", "X-Forwarded-For: 203.0.113.9", "-H", "Cookie: a=1",
            "-X", "POST", "--data", "body", "\(base)/inspect/some/path?q=1",
        ])
        let event =
            (try JSONSerialization.jsonObject(with: inspected.stdout) as? [String: Any])?["event"] as? [String: Any]
        let http = (event?["requestContext"] as? [String: Any])?["http"] as? [String: Any]
        #expect(http?["sourceIp"] as? String == "203.0.113.9")
        #expect(http?["method"] as? String == "POST")
        #expect((event?["requestContext"] as? [String: Any])?["domainName"] as? String == "api.example.com")
        #expect(event?["pathParameters"] as? [String: String] == ["proxy": "some/path"])
        #expect(event?["cookies"] as? [String] == ["a=1"])
        #expect(event?["body"] as? String == "body")
        let direct = try await curl(["\(base)/inspect/x"])
        let directEvent =
            (try JSONSerialization.jsonObject(with: direct.stdout) as? [String: Any])?["event"] as? [String: Any]
        let directHTTP = (directEvent?["requestContext"] as? [String: Any])?["http"] as? [String: Any]
        #expect(
            directHTTP?["sourceIp"] as? String == "127.0.0.1",
            "without a forwarded address, the client is nginx's peer"
        )
    }

    @Test(.enabled(if: Tools.usable("nginx", "curl", "wrk"), "nginx, curl or wrk is not installed"))
    func theShippedRuntimeJSONAnswersABurstBehindNginxWithoutThrottling() async throws {
        let repository = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let shipped = try String(contentsOf: repository.appending(path: "runtime.json"), encoding: .utf8)
            .replacingOccurrences(
                of: #""directory": "Functions/py-echo""#,
                with: #""directory": "\#(repository.path)/Functions/py-echo""#
            )
        let socket = directory.path("burst.sock")
        let server = try await ServerProcess(
            config: try directory.write("shipped.json", shipped),
            arguments: ["--socket", socket, "--socket-mode", "666"]
        )
        let nginx = try await Nginx(in: directory, socket: socket)
        defer { stop(nginx.process) }
        // A cold host: 400 requests from 32 parallel clients.
        let urls = (0..<400).flatMap { ["-o", "/dev/null", "\(nginx.base)/hello/Burst\($0)"] }
        let burst = try await curl(
            ["--parallel", "--parallel-max", "32", "-w", "%{http_code}\n"] + urls,
            timeout: .seconds(120)
        )
        let codes = burst.out.split(separator: "\n")
        #expect(codes.count == 400)
        #expect(codes.allSatisfy { $0 == "200" }, "\(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count))")
        // And a sustained load of 32 connections sees no answer but 2xx.
        let wrk = try await runProcess("wrk", ["-t1", "-c32", "-d2s", "\(nginx.base)/hello/Ada"])
        let summary = String(decoding: wrk.stdout, as: UTF8.self)
        #expect(summary.contains("requests in"), "\(summary)")
        #expect(!summary.contains("Non-2xx"), "\(summary)")
        #expect(server.process.isRunning)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func sigtermAnswersEveryRequestInFlightThenExitsZero() async throws {
        let server = try await ServerProcess(config: config)
        let url = "\(server.address)/2015-03-31/functions/sleepy/invocations"
        let calls = (0..<5).map { _ in
            Task { try await curl(["-X", "POST", "--data", #"{"sleepMs": 1500}"#, "-w", "\n%{http_code}", url]) }
        }
        // Wait until all five are running, then ask the host to stop.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let functions = try await curl(["\(server.address)/_galley/functions"])
            if functions.out.contains(#""running":5"#) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        server.signal(SIGTERM)
        // While they finish, the listener is closed: a new connection is refused at once (curl's
        // exit 7), which is what nginx needs to move to another upstream.
        var refused = false
        while ContinuousClock.now < deadline + .seconds(10), !refused {
            refused = try await curl(["\(server.address)/_galley/health"]).status == 7
        }
        #expect(refused, "a new connection was not refused while draining")
        #expect(server.process.isRunning, "refused while the invocations in flight still run")
        for call in calls {
            let output = try await call.value
            #expect(output.out.hasSuffix("\n200"), "\(output.out) \(output.err)")
            #expect(output.out.contains(#""functionName":"sleepy""#))
        }
        #expect(try await server.waitForExit() == 0)
        #expect(server.stderr.components(separatedBy: "REPORT RequestId:").count - 1 == 5)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func aSecondHostOnTheSameStorageFolderIsRefusedAndTheCLIStillWorks() async throws {
        let server = try await ServerProcess(config: config)
        let second = try await runGalley(["serve", "--config", config, "--port", "0"])
        #expect(second.status == 2)
        let pid = server.process.processIdentifier
        #expect(
            second.err.hasPrefix("galley: \(config): storage.path: the storage folder ")
                && second.err.contains("is in use by another galley serve (pid \(pid))"),
            "\(second.err)"
        )
        #expect(second.err.split(separator: "\n").count == 1, "\(second.err)")
        #expect(try await curl(["\(server.address)/hello/Still"]).out == #"{"message":"Hello, Still!"}"#)
        // The CLI's store and queue commands work beside the running host.
        let put = try await runGalley(["kv", "put", "hello", "k", "1", "--config", config])
        #expect(put.status == 0, "\(put.err)")
        let queue = try await runGalley(["queue", "--config", config])
        #expect(queue.status == 0, "\(queue.err)")
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func sighupLoadsAValidFileAndRefusesAnInvalidOne() async throws {
        let server = try await ServerProcess(config: config)
        #expect(try await curl(["\(server.address)/hello/A"]).out == #"{"message":"Hello, A!"}"#)
        try directory.write(
            "runtime.json",
            #"{"storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "environment": {"GREETING": "Hi"}, "routes": ["GET /hello/{name}", "GET /hi/{name}"]}}}"#
        )
        server.signal(SIGHUP)
        #expect(try await server.waitForLog { $0.contains("reloaded") })
        #expect(try await curl(["\(server.address)/hi/B"]).out == #"{"message":"Hi, B!"}"#)
        #expect(try await curl(["\(server.address)/count/x", "-X", "POST"]).out == #"{"message":"Not Found"}"#)
        try directory.write("runtime.json", #"{"functions": {"hello": {"handler": "Hello", "timeout": -1}}}"#)
        server.signal(SIGHUP)
        #expect(try await server.waitForLog { $0.contains("reload refused") && $0.contains("functions.hello.timeout") })
        #expect(
            try await curl(["\(server.address)/hi/C"]).out == #"{"message":"Hi, C!"}"#,
            "the old configuration stays"
        )
        #expect(server.process.isRunning)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func slowlorisAndAHugeBodyDoNotHurtOtherCallers() async throws {
        let server = try await ServerProcess(config: config)
        let port = try #require(server.port)
        // 40 connections that dribble a request header one byte at a time and never finish it, until
        // the test is done (or 25 s, short of the 30 s requestTimeout that would cut them).
        let done = Atomic<Bool>(false)
        let slowEnded = Atomic<Bool>(false)
        let slow = Task {
            await Blocking.run {
                let sockets = (0..<40).compactMap { _ in try? connectLoopback(port: port) }
                let header = Array("GET /hello/slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".utf8)
                for byte in header { for s in sockets { var b = byte; _ = send(s, &b, 1, Int32(MSG_NOSIGNAL)) } }
                let cap = ContinuousClock.now + .seconds(25)
                while !done.load(ordering: .relaxed) && ContinuousClock.now < cap {
                    for s in sockets { var b = UInt8(ascii: "a"); _ = send(s, &b, 1, Int32(MSG_NOSIGNAL)) }
                    usleep(100_000)
                }
                slowEnded.store(true, ordering: .relaxed)
                sockets.forEach { close($0) }
                return sockets.count
            }
        }
        let huge = directory.path("huge.json")
        try Data(("\"" + String(repeating: "x", count: 7 * 1024 * 1024) + "\"").utf8).write(to: URL(filePath: huge))
        let tooLarge = try await curl([
            "-X", "POST", "--data-binary", "@\(huge)", "-w", "\n%{http_code}",
            "\(server.address)/2015-03-31/functions/hello/invocations",
        ])
        #expect(tooLarge.out.hasSuffix("\n413"), "\(tooLarge.out.suffix(200))")
        // Each answer comes while the slow connections are still open (an order, not a time).
        for index in 0..<20 {
            let response = try await curl(["\(server.address)/hello/\(index)"])
            #expect(response.out == #"{"message":"Hello, \#(index)!"}"#)
            let slowStillOpen = !slowEnded.load(ordering: .relaxed)
            #expect(slowStillOpen, "hello waited for the slow connections to go")
        }
        done.store(true, ordering: .relaxed)
        #expect(await slow.value == 40)
    }
}

/// A TCP connection to 127.0.0.1:`port`.
func connectLoopback(port: Int) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else {
        close(descriptor)
        throw POSIXError(.ECONNREFUSED)
    }
    return descriptor
}

/// Stops a helper process: SIGTERM, then SIGKILL if it is still there after 5 s.
func stop(_ process: Process) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    let deadline = ContinuousClock.now + .seconds(5)
    while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// nginx in front of a galley socket, as the README configures it, on a free port.
struct Nginx {
    let process: Process
    /// `http://127.0.0.1:PORT`.
    let base: String

    init(in directory: TemporaryDirectory, socket: String) async throws {
        try await self.init(in: directory, servers: ["unix:\(socket)"])
    }

    /// nginx proxying to the upstream `servers` (`unix:/path` or `127.0.0.1:9000`), in turn.
    init(in directory: TemporaryDirectory, servers: [String]) async throws {
        let port = try freePort()
        let prefix = directory.path("nginx")
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        let conf = try directory.write(
            "nginx.conf",
            NginxConfiguration.text(prefix: prefix, servers: servers, listen: "127.0.0.1:\(port)")
        )
        let nginx = Process()
        nginx.executableURL = URL(filePath: try Tools.path(of: "nginx"))
        nginx.arguments = ["-c", conf, "-p", prefix, "-e", "\(prefix)/error.log"]
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        let base = "http://127.0.0.1:\(port)"
        var ready = false
        let deadline = ContinuousClock.now + .seconds(10)
        while !ready && ContinuousClock.now < deadline {
            ready = (try? await curl(["--fail", "-o", "/dev/null", "\(base)/_galley/health"]))?.status == 0
            if !ready { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard ready else {
            stop(nginx)
            let log = (try? String(contentsOfFile: "\(prefix)/error.log", encoding: .utf8)) ?? ""
            throw NginxFailed(log: log)
        }
        self.process = nginx
        self.base = base
    }

    struct NginxFailed: Error, CustomStringConvertible {
        var log: String
        var description: String { "nginx did not come up: \(log)" }
    }
}
