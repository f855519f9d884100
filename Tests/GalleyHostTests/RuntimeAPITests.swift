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

        init() async throws {
            let recorder = self.recorder
            endpoint = RuntimeEndpoint { event in recorder.events.withLock { $0.append(event) } }
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
        let harness = try await Harness()
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
