import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Operator mistakes and hostile clients against a real `galley serve`: each gets one clear
/// line or answer, and nothing reaches another caller.
@Suite(.serialized)
struct HostileInputTests {
    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write(
            "runtime.json",
            #"{"storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "routes": ["GET /hello/{name}"]}}}"#
        )
    }

    /// The last line `galley serve` printed before exiting, with its exit status. `config` defaults to
    /// the suite's own.
    func serveFails(_ arguments: [String], config: String? = nil) async throws -> (status: Int32, line: String) {
        let output = try await runGalley(
            ["serve", "--config", config ?? self.config] + arguments,
            timeout: .seconds(30)
        )
        let lines = output.err.split(separator: "\n")
        #expect(lines.count == 1, "one line, not: \(output.err)")
        return (output.status, lines.last.map(String.init) ?? "")
    }

    @Test func bindFailuresAreOneLineAndExitTwo() async throws {
        // A port someone else holds.
        let (holder, port) = try loopbackSocket(listening: true)
        defer { close(holder) }

        let inUse = try await serveFails(["--port", String(port)])
        #expect(inUse.status == 2)
        #expect(inUse.line == "galley: cannot listen on 127.0.0.1:\(port): address already in use (use --port)")

        let missingFolder = try await serveFails(["--socket", directory.path("no/such/folder/galley.sock")])
        #expect(missingFolder.status == 2)
        #expect(
            missingFolder.line
                == "galley: cannot listen on unix:\(directory.path("no/such/folder/galley.sock")): no such folder for the socket (create it, or use --socket)"
        )

        let badHost = try await serveFails(["--host", "no-such-host.invalid", "--port", "0"])
        #expect(badHost.status == 2)
        #expect(
            badHost.line
                == "galley: cannot listen on no-such-host.invalid:0: the host name does not resolve (use --host)"
        )
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func aLiveSocketIsNotTakenOverAndAStaleOneIsReplaced() async throws {
        let path = directory.path("galley.sock")
        let first = try await ServerProcess(config: config, arguments: ["--socket", path])
        // Another host with a storage folder of its own (one folder takes one host).
        let other = try directory.write(
            "other.json",
            #"{"storage": {"path": "other"}, "functions": {"hello": {"handler": "Hello"}}}"#
        )
        let second = try await serveFails(["--socket", path], config: other)
        #expect(second.status == 2)
        #expect(
            second.line
                == "galley: cannot listen on unix:\(path): another process is listening there (stop it, or use another --socket)"
        )
        let answer = try await curl(["--unix-socket", path, "http://localhost/hello/first"])
        #expect(answer.out == #"{"message":"Hello, first!"}"#, "the first instance keeps its socket")

        // A regular file is never replaced.
        let file = try directory.write("not-a-socket", "keep me")
        let notSocket = try await serveFails(["--socket", file], config: other)
        #expect(notSocket.status == 2)
        #expect(notSocket.line.hasSuffix("the path exists and is not a socket (refusing to replace it)"))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")

        // A socket file whose listener died (SIGKILL leaves it behind) is replaced.
        first.signal(SIGKILL)
        _ = try await first.waitForExit()
        #expect(FileManager.default.fileExists(atPath: path))
        let third = try await ServerProcess(config: config, arguments: ["--socket", path])
        let again = try await curl(["--unix-socket", path, "http://localhost/hello/third"])
        #expect(again.out == #"{"message":"Hello, third!"}"#)
        third.signal(SIGTERM)
        #expect(try await third.waitForExit() == 0)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func sighupAppliesWhatItSaysAndLogsWhatWaitsForARestart() async throws {
        let server = try await ServerProcess(config: config)
        let invoke = "\(server.address)/2015-03-31/functions/hello/invocations"
        #expect(try await curl(["-X", "POST", "-d", "{}", "-w", "\n%{http_code}", invoke]).out.hasSuffix("\n200"))
        try directory.write(
            "runtime.json",
            #"{"server": {"port": 1, "invokeAPI": false, "trustedProxies": []}, "storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "routes": ["GET /hello/{name}"]}}}"#
        )
        server.signal(SIGHUP)
        #expect(try await server.waitForLog { $0.contains("reloaded") })
        #expect(
            server.stderr.contains(
                "changes to server.port take effect when the host restarts; the rest take effect now"
            )
        )
        // What the log says takes effect now does: the Invoke API and the host's endpoints are off.
        #expect(try await curl(["-X", "POST", "-d", "{}", "-w", "\n%{http_code}", invoke]).out.hasSuffix("\n404"))
        #expect(try await curl(["-w", "\n%{http_code}", "\(server.address)/_galley/health"]).out.hasSuffix("\n404"))
        #expect(try await curl(["\(server.address)/hello/still"]).out == #"{"message":"Hello, still!"}"#)
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    /// Sends raw bytes on a new connection and returns what came back before the host closed it
    /// or `timeout` passed.
    func exchange(_ request: String, port: Int, timeout: Duration = .seconds(5)) async throws -> String {
        let descriptor = try connectLoopback(port: port)
        return await Blocking.run {
            defer { close(descriptor) }
            var bytes = Array(request.utf8)
            _ = send(descriptor, &bytes, bytes.count, Int32(MSG_NOSIGNAL))
            var wait = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var answer = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count <= 0 { break }
                answer += buffer[..<count]
            }
            return String(decoding: answer, as: UTF8.self)
        }
    }

    @Test func malformedChunkedBodiesAreABadRequest() async throws {
        let server = try await ServerProcess(config: config)
        let port = try #require(server.port)
        for body in ["zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcXX0\r\n\r\n"] {
            let invoke = try await exchange(
                "POST /2015-03-31/functions/hello/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(body)",
                port: port
            )
            #expect(invoke.hasPrefix("HTTP/1.1 400 "), "\(invoke)")
            #expect(invoke.contains("x-amzn-ErrorType: InvalidRequestContentException"))
            #expect(invoke.contains("the chunked encoding is malformed"))
            let routed = try await exchange(
                "GET /hello/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(body)",
                port: port
            )
            #expect(routed.hasPrefix("HTTP/1.1 400 "), "\(routed)")
            #expect(routed.hasSuffix(#"{"message":"Bad Request"}"#))
        }
        #expect(try await curl(["\(server.address)/hello/after"]).out == #"{"message":"Hello, after!"}"#)
    }

    /// Whether the host closes `descriptor` (recv returns 0 or fails) before `deadline`, while
    /// `dribble` sends one more byte every 200 ms.
    static func closedByHost(_ descriptor: Int32, within timeout: Duration, dribble: Bool) async -> Bool {
        await Blocking.run {
            var wait = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                if dribble {
                    var byte = UInt8(ascii: "a")
                    if send(descriptor, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { return true }
                }
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return true }
            }
            return false
        }
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func aSlowRequestIsCutAtTheRequestTimeout() async throws {
        let config = try directory.write(
            "slow.json",
            #"{"server": {"requestTimeout": 1}, "storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "routes": ["POST /hello/{name}"]}}}"#
        )
        let server = try await ServerProcess(config: config)
        let port = try #require(server.port)
        // A body that never finishes, one byte every 200 ms: the idle timer alone would never fire.
        let body = try connectLoopback(port: port)
        defer { close(body) }
        var head = Array("POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".utf8)
        _ = send(body, &head, head.count, Int32(MSG_NOSIGNAL))
        // Headers that never finish.
        let header = try connectLoopback(port: port)
        defer { close(header) }
        var start = Array("GET /hello/x HTTP/1.1\r\nX-Slow: ".utf8)
        _ = send(header, &start, start.count, Int32(MSG_NOSIGNAL))
        async let bodyClosed = Self.closedByHost(body, within: .seconds(10), dribble: true)
        async let headerClosed = Self.closedByHost(header, within: .seconds(10), dribble: true)
        #expect(await bodyClosed, "a body sent a byte at a time is cut at server.requestTimeout")
        #expect(await headerClosed, "a header sent a byte at a time is cut at server.requestTimeout")
        #expect(try await server.waitForLog { $0.contains("was not complete within 1 s (server.requestTimeout)") })
        // On a kept-alive connection, a slow request after a whole one is cut too: the clock is the
        // second request's own.
        let kept = try connectLoopback(port: port)
        defer { close(kept) }
        var both = Array(
            "POST /hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /hello/x HTTP/1.1\r\nX-Slow: ".utf8
        )
        _ = send(kept, &both, both.count, Int32(MSG_NOSIGNAL))
        #expect(
            await Self.closedByHost(kept, within: .seconds(10), dribble: true),
            "a slow request after a whole one on the same connection is cut at server.requestTimeout"
        )
        // A request that arrives whole is not cut, however long its function runs.
        #expect(try await curl(["-X", "POST", "\(server.address)/hello/whole"]).out == #"{"message":"Hello, whole!"}"#)
    }

    @Test(.enabled(if: Tools.usable("curl"), "curl is not installed"))
    func connectionsPastTheCapAreRefusedAtOnce() async throws {
        let config = try directory.write(
            "capped.json",
            #"{"server": {"maxConnections": 5}, "storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "routes": ["GET /hello/{name}"]}}}"#
        )
        let server = try await ServerProcess(config: config)
        let port = try #require(server.port)
        var held = try (0..<5).map { _ in try connectLoopback(port: port) }
        defer { held.forEach { close($0) } }
        // Each held connection has had an answer, so the host has counted it in (connections
        // accepted together are set up on different event loops, in no fixed order).
        for descriptor in held {
            let answered = await Blocking.run {
                var request = Array("GET /hello/held HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                _ = send(descriptor, &request, request.count, Int32(MSG_NOSIGNAL))
                var buffer = [UInt8](repeating: 0, count: 4096)
                return recv(descriptor, &buffer, buffer.count, 0) > 0
            }
            #expect(answered)
        }
        let answer = try await exchange("GET /hello/sixth HTTP/1.1\r\nHost: x\r\n\r\n", port: port)
        #expect(answer.hasPrefix("HTTP/1.1 503 Service Unavailable"), "\(answer) \(server.stderr)")
        #expect(answer.hasSuffix(#"{"message":"Too many open connections"}"# + "\n"))
        #expect(try await server.waitForLog { $0.contains("5 are open (server.maxConnections)") })
        // Closing them frees their places.
        held.forEach { close($0) }
        held = []
        var freed = false
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !freed {
            freed = try await curl(["\(server.address)/hello/again"]).out == #"{"message":"Hello, again!"}"#
        }
        #expect(freed)
    }
}
