import Foundation
import Synchronization
import Testing

@testable import GalleyHost

/// The Runtime API as a runtime sees it, over real loopback connections.
struct RuntimeAPITests {
    /// An endpoint on its own port, recording what the runtime told it.
    final class Harness: Sendable {
        let recorder = Recorder()
        let endpoint: RuntimeEndpoint
        let server: RuntimeAPIServer

        /// The test process plays the environment's runtime (with its children when `family`).
        init(family: Bool = false) async throws {
            let recorder = self.recorder
            endpoint = RuntimeEndpoint { event in recorder.events.withLock { $0.append(event) } }
            endpoint.admit { inode in
                LoopbackPeer.isHeld(inode, byAnyOf: family ? LoopbackPeer.family(of: getpid()) : [getpid()])
            }
            server = try await RuntimeAPIServer.start(for: endpoint)
        }

        deinit { server.stop() }

        func client() throws -> RuntimeAPIClient { try RuntimeAPIClient(address: server.address) }

        func deliver(_ id: String, _ payload: String = #"{"a":1}"#) {
            endpoint.deliver(
                .init(
                    requestID: id,
                    payload: Data(payload.utf8),
                    deadlineMs: 1_900_000_000_000,
                    functionARN: "arn:aws:lambda:us-east-1:123456789012:function:f",
                    traceID: "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
                    clientContext: #"{"custom":{}}"#
                )
            )
        }

        var responses: [String] {
            recorder.events.withLock { events in
                events.compactMap {
                    if case .response(let body) = $0 { return String(decoding: body, as: UTF8.self) }
                    return nil
                }
            }
        }
    }

    final class Recorder: Sendable {
        let events = Mutex<[RuntimeEndpoint.Event]>([])
    }

    /// Runs blocking client calls off the cooperative threads.
    func blocking<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            GalleyHost.BlockingThread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    @Test func nextCarriesEveryRuntimeHeaderAndResponseIsAccepted() async throws {
        let harness = try await Harness()
        harness.deliver("id-1")
        let next = try await blocking { try harness.client().next() }
        #expect(next.status == 200)
        #expect(next.headers["lambda-runtime-aws-request-id"] == "id-1")
        #expect(next.headers["lambda-runtime-deadline-ms"] == "1900000000000")
        #expect(
            next.headers["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
        )
        #expect(next.headers["lambda-runtime-trace-id"]?.hasPrefix("Root=1-") == true)
        #expect(next.headers["lambda-runtime-client-context"] == #"{"custom":{}}"#)
        #expect(next.headers["content-type"] == "application/json")
        #expect(String(decoding: next.body, as: UTF8.self) == #"{"a":1}"#)
        let answer = try await blocking {
            try harness.client().post("invocation/id-1/response", body: Array(#"{"ok":true}"#.utf8))
        }
        #expect(answer.status == 202)
        #expect(String(decoding: answer.body, as: UTF8.self) == #"{"status":"OK"}"#)
        #expect(harness.responses == [#"{"ok":true}"#])
    }

    @Test func nextWaitsUntilAnInvocationIsDelivered() async throws {
        let harness = try await Harness()
        let client = try harness.client()
        async let next = blocking { try client.next() }
        // The first /next ends the init phase; then the long poll waits for the delivery.
        let deadline = ContinuousClock.now + .seconds(5)
        while harness.recorder.events.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        harness.deliver("late")
        #expect(try await next.headers["lambda-runtime-aws-request-id"] == "late")
    }

    @Test func unknownIdIs400AndAnsweredIdIs403() async throws {
        let harness = try await Harness()
        harness.deliver("mine")
        let client = try harness.client()
        _ = try await blocking { try client.next() }
        let unknown = try await blocking { try client.post("invocation/another/response", body: []) }
        #expect(unknown.status == 400)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains(#""errorType":"InvalidRequestID""#))
        let first = try await blocking { try client.post("invocation/mine/error", body: Array("{}".utf8)) }
        #expect(first.status == 202)
        let again = try await blocking { try client.post("invocation/mine/response", body: []) }
        #expect(again.status == 403)
        #expect(String(decoding: again.body, as: UTF8.self).contains(#""errorType":"InvalidStateTransition""#))
        let initError = try await blocking { try client.post("init/error", body: []) }
        #expect(initError.status == 403)
    }

    @Test func aRuntimeCannotFetchOrAnswerAnotherEnvironmentsInvocation() async throws {
        let (first, second) = (try await Harness(), try await Harness())
        first.deliver("first-id")
        second.deliver("second-id")
        let client = try second.client()
        let fetched = try await blocking { try client.next() }
        #expect(fetched.headers["lambda-runtime-aws-request-id"] == "second-id")
        // Connected to the second environment's port, the first's invocation does not exist.
        let stolen = try await blocking { try client.post("invocation/first-id/response", body: Array("{}".utf8)) }
        #expect(stolen.status == 400)
        #expect(first.responses.isEmpty)
    }

    @Test func anotherProcessIsClosedWithoutAByteAndCannotDisturbTheWaitingNext() async throws {
        let harness = try await Harness()
        let client = try harness.client()
        let next = Task { try await blocking { try client.next() } }
        while harness.recorder.events.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
        // A stranger (here: python3, another process) asks for /next on the same port.
        let port = harness.server.address.split(separator: ":").last!
        let script = """
            import socket
            s = socket.create_connection(("127.0.0.1", \(port)))
            s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            s.settimeout(10)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            print(len(data))
            """
        let stranger = Process()
        stranger.executableURL = URL(filePath: "/usr/bin/env")
        stranger.arguments = ["python3", "-c", script]
        let output = Pipe()
        stranger.standardOutput = output
        try stranger.run()
        let printed = try await blocking { output.fileHandleForReading.readDataToEndOfFile() }
        stranger.waitUntilExit()
        #expect(String(decoding: printed, as: UTF8.self) == "0\n", "the stranger read an answer")
        // The environment's own /next still gets its invocation.
        harness.deliver("own")
        let delivered = try await next.value
        #expect(delivered.headers["lambda-runtime-aws-request-id"] == "own")
    }

    @Test func atMostAFewConnectionsAreOpenAtOnce() async throws {
        let harness = try await Harness()
        let port = Int(harness.server.address.split(separator: ":").last!)!
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<(RuntimeAPIServer.maxConnections + 4) {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            _ = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            sockets.append(descriptor)
        }
        // Ask each for its health: the ones over the cap were closed, the rest answer 404 (no such path).
        let request = Array("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let opened = sockets
        let answered = try await blocking {
            opened.filter { descriptor in
                _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var timeout = timeval(tv_sec: 30, tv_usec: 0)  // only a failing run waits it out
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var buffer = [UInt8](repeating: 0, count: 1024)
                return recv(descriptor, &buffer, buffer.count, 0) > 0
            }.count
        }
        #expect(answered == RuntimeAPIServer.maxConnections)
    }

    @Test func bodyOverSixMegabytesIs413AndTheCallerGetsResponseSizeTooLarge() async throws {
        let harness = try await Harness()
        harness.deliver("big")
        let client = try harness.client()
        _ = try await blocking { try client.next() }
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: Dispatcher.maxResponsePayload + 1)
        let answer = try await blocking { try client.post("invocation/big/response", body: body) }
        #expect(answer.status == 413)
        #expect(String(decoding: answer.body, as: UTF8.self).contains("RequestEntityTooLarge"))
        let errorTypes = harness.recorder.events.withLock { events in
            events.compactMap { event -> String? in
                if case .error(_, let type) = event { return type }
                return nil
            }
        }
        #expect(errorTypes == ["Function.ResponseSizeTooLarge"])
    }

    @Test func chunkedBodiesAreAccepted() async throws {
        let harness = try await Harness(family: true)  // curl, a child of the test, is the runtime here
        harness.deliver("chunked")
        _ = try await blocking { try harness.client().next() }
        // The Swift runtime sends large responses chunked; curl does the same with this header.
        let output = try await blocking { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(filePath: "/usr/bin/env")
            process.arguments = [
                "curl", "--silent", "--show-error", "-H", "Transfer-Encoding: chunked", "--data-binary", #"{"c":1}"#,
                "http://\(harness.server.address)/2018-06-01/runtime/invocation/chunked/response",
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(output.0 == 0)
        #expect(output.1 == #"{"status":"OK"}"#)
        #expect(harness.responses == [#"{"c":1}"#])
    }

    @Test func initErrorIsAcceptedOnlyBeforeTheFirstNext() async throws {
        let harness = try await Harness()
        let answer = try await blocking {
            try harness.client().post(
                "init/error",
                body: Array(#"{"errorType":"Runtime.ImportModuleError","errorMessage":"no"}"#.utf8),
                headers: [("Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError")]
            )
        }
        #expect(answer.status == 202)
        let types = harness.recorder.events.withLock { events in
            events.compactMap { event -> String? in
                if case .initError(_, let type) = event { return type }
                return nil
            }
        }
        #expect(types == ["Runtime.ImportModuleError"])
    }

    @Test func unknownResponseModeIsRefused() async throws {
        let harness = try await Harness()
        harness.deliver("mode")
        let client = try harness.client()
        _ = try await blocking { try client.next() }
        let answer = try await blocking {
            try client.post(
                "invocation/mode/response",
                body: [],
                headers: [("Lambda-Runtime-Function-Response-Mode", "buffered")]
            )
        }
        #expect(answer.status == 400)
        #expect(String(decoding: answer.body, as: UTF8.self).contains("InvalidFunctionResponseMode"))
    }
}
