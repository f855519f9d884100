import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `galley package`: the zip's `bootstrap` serves invocations from a Runtime API that is not
/// Galley's own (a small Python server standing in for AWS Lambda).
struct PackageCommandTests {
    /// A one-invocation Runtime API: hands out one event, prints what the runtime posts, and
    /// closes the connection on the second `/next` (as a Lambda sandbox that is shut down).
    static let runtimeAPI = """
        import http.server, json, sys, threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            served = 0

            def do_GET(self):
                if Handler.served:
                    print("SECOND_NEXT", flush=True)
                    self.close_connection = True
                    threading.Thread(target=self.server.shutdown).start()
                    return
                Handler.served = 1
                body = b'{"name": "Lambda"}'
                self.send_response(200)
                for name, value in [
                    ("Lambda-Runtime-Aws-Request-Id", "req-1"),
                    ("Lambda-Runtime-Deadline-Ms", "9999999999999"),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:hello"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                ]:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                print(json.dumps({"path": self.path, "body": body.decode()}), flush=True)
                self.send_response(202)
                self.send_header("Content-Length", "15")
                self.end_headers()
                self.wfile.write(b'{"status":"OK"}')

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("PORT", server.server_address[1], flush=True)
        server.serve_forever()
        """

    @Test(.enabled(if: Tools.usable("zip", "unzip", "python3"), "zip, unzip or python3 is not installed"))
    func packagedBootstrapServesAnInvocationFromARuntimeAPI() async throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("runtime.json", #"{"functions": {"hello": {"handler": "Hello"}}}"#)
        let zip = directory.path("hello.zip")
        // The debug binary stands in for the release build, which takes minutes.
        let packaged = try await runGalley(
            ["package", "hello", "--config", config, "--binary", Binaries.galley.path, "--output", zip]
        )
        #expect(packaged.status == 0, "\(packaged.err)")
        #expect(packaged.out == zip + "\n")
        #expect(packaged.err.contains("aws lambda create-function --function-name hello --runtime provided.al2023"))
        let unpacked = directory.path("task")
        let unzip = try await runProcess("unzip", ["-o", zip, "-d", unpacked])
        #expect(unzip.status == 0, "\(unzip.err)")
        let bootstrap = unpacked + "/bootstrap"
        #expect(FileManager.default.isExecutableFile(atPath: bootstrap))

        // The stand-in Runtime API, then the bootstrap pointed at it with only Lambda's variables.
        let script = try directory.write("runtime_api.py", Self.runtimeAPI)
        let api = Process()
        api.executableURL = URL(filePath: try Tools.path(of: "python3"))
        api.arguments = [script]
        let apiOutput = Pipe()
        api.standardOutput = apiOutput
        try api.run()
        // SIGKILL: a disposition of SIGTERM ignored in this test process would be inherited.
        defer { if api.isRunning { kill(api.processIdentifier, SIGKILL) } }
        let reader = apiOutput.fileHandleForReading
        let portLine = await Blocking.run {
            var text = ""
            while !text.contains("\n") {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
        let port = try #require(portLine.firstMatch(of: /PORT (\d+)/)?.1, "the stand-in printed: \(portLine)")

        let run = try await runProcess(
            bootstrap,
            [],
            environment: [
                "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:\(port)", "_HANDLER": "Hello",
                "AWS_LAMBDA_FUNCTION_NAME": "hello", "GREETING": "Hi",
            ],
            timeout: .seconds(30)
        )
        #expect(run.status == 0, "\(run.err)")
        // Whatever the bootstrap did, the stand-in stops now, so reading its output ends.
        if api.isRunning { kill(api.processIdentifier, SIGKILL) }
        let posted = await Blocking.run { String(decoding: reader.readDataToEndOfFile(), as: UTF8.self) }
        #expect(posted.contains(#""path": "/2018-06-01/runtime/invocation/req-1/response""#), "\(posted)")
        #expect(posted.contains(#"{\"message\":\"Hi, Lambda!\"}"#), "\(posted)")
        #expect(posted.contains("SECOND_NEXT"))
    }

    @Test func packagingACommandFunctionIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("runtime.json", #"{"functions": {"py": {"command": ["python3", "x"]}}}"#)
        let output = try await runGalley(["package", "py", "--config", config, "--binary", Binaries.galley.path])
        #expect(output.status == 2)
        #expect(output.err == "galley: 'py' runs a command, not a Swift handler: package it with its own tools\n")
    }
}
