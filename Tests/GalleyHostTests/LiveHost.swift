import GalleyHost
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// What a request to a live host answered.
struct TestResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer
}

/// A plain HTTP/1.1 client for a host on loopback: one connection per request, closed after it.
///
/// The tests speak only plain HTTP on loopback, so SwiftNIO's own codec is all they need (no TLS
/// stack, which HummingbirdTesting's AsyncHTTPClient would bring into every test build).
struct TestClient: Sendable {
    let port: Int

    func execute(
        uri: String,
        method: HTTPRequest.Method,
        headers: HTTPFields = [:],
        body: ByteBuffer? = nil
    ) async throws -> TestResponse {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method.rawValue), uri: uri)
            head.headers.add(name: "Host", value: "localhost")
            for field in headers { head.headers.add(name: field.name.rawName, value: field.value) }
            if head.headers["Content-Length"].isEmpty {
                head.headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
            }
            head.headers.add(name: "Connection", value: "close")
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(body))) }
            try await outbound.write(.end(nil))

            var response: HTTPResponseHead?
            var collected = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let received):
                    response = received
                case .body(var chunk):
                    collected.writeBuffer(&chunk)
                case .end:
                    guard let response else { throw TestClientError(message: "an answer with no head") }
                    var fields = HTTPFields()
                    for (name, value) in response.headers {
                        if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
                    }
                    return TestResponse(
                        status: HTTPResponse.Status(code: Int(response.status.code)),
                        headers: fields,
                        body: collected
                    )
                }
            }
            throw TestClientError(message: "the host closed the connection before its answer ended")
        }
    }
}

extension TestClient {
    /// Sends `request` as it is and returns every byte the host wrote until it closed.
    func raw(_ request: String) async throws -> String {
        try await rawConnection().executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var received = ByteBuffer()
            for try await var chunk in inbound { received.writeBuffer(&chunk) }
            return String(buffer: received)
        }
    }
}

extension TestClient {
    /// Sends `request` and returns the bytes that came back up to the end of the first answer's head,
    /// leaving the connection open; throws when no head came `within` the time given (a guard against
    /// a test hanging, not a measure).
    func firstAnswer(to request: ByteBuffer, within limit: Duration) async throws -> String {
        try await rawConnection().executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    // The host may stop reading (and answer) before all of the request is written.
                    try? await outbound.write(request)
                    try await Task.sleep(for: limit)
                    throw TestClientError(message: "no answer within \(limit)")
                }
                group.addTask {
                    var received = ByteBuffer()
                    for try await var chunk in inbound {
                        received.writeBuffer(&chunk)
                        let text = String(buffer: received)
                        if text.contains("\r\n\r\n") { return text }
                    }
                    return String(buffer: received)
                }
                defer { group.cancelAll() }
                return try await group.next() ?? ""
            }
        }
    }
}

extension TestClient {
    /// A connection to the host that speaks bytes, not HTTP.
    fileprivate func rawConnection() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }
}

struct TestClientError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension FunctionHost {
    /// Serves on a free loopback port while `test` runs, then shuts the server down.
    func withLiveServer<Value: Sendable>(
        _ test: @Sendable (TestClient) async throws -> Value
    ) async throws -> Value {
        let (addresses, continuation) = AsyncStream.makeStream(of: String.self)
        let application = application { address in continuation.yield(address) }
        let group = ServiceGroup(
            configuration: .init(
                services: [application],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
        )
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                var iterator = addresses.makeAsyncIterator()
                guard let address = await iterator.next(),
                    let port = address.split(separator: ":").last.flatMap({ Int($0) })
                else { throw TestClientError(message: "the host did not start listening") }
                let value = try await test(TestClient(port: port))
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return value
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }
}
