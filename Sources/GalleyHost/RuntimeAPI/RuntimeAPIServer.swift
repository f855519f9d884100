import Galley
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The Lambda Runtime API (`/2018-06-01/runtime/…`) for one environment, on its own loopback port.
///
/// Plain SwiftNIO rather than Hummingbird: a listener per environment must cost next to nothing,
/// and `/next` is a long poll that answers whenever the environment delivers an invocation.
///
/// It answers only the environment's own processes: a connection from any other process (found by
/// its socket, see ``LoopbackPeer``) is closed before a byte is read or written, and at most
/// ``maxConnections`` are open at once, so that no function can spend the host's descriptors.
struct RuntimeAPIServer: Sendable {
    /// Connections open at once; a runtime client needs one, a few more are slack.
    static let maxConnections = 4

    let channel: any Channel
    /// `127.0.0.1:PORT`, for `AWS_LAMBDA_RUNTIME_API`.
    let address: String

    /// Listens on 127.0.0.1, port 0, for `endpoint`.
    static func start(
        for endpoint: RuntimeEndpoint,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RuntimeAPIServer {
        let open = Atomic<Int>(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let admitted =
                    open.wrappingAdd(1, ordering: .relaxed).newValue <= maxConnections
                    && endpoint.admits(peerPort: channel.remoteAddress?.port, localPort: channel.localAddress?.port)
                channel.closeFuture.whenComplete { _ in open.subtract(1, ordering: .relaxed) }
                guard admitted else {
                    // Not a byte for a stranger, nor for one connection too many.
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RuntimeAPIHandler(endpoint: endpoint))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return RuntimeAPIServer(channel: channel, address: "127.0.0.1:\(channel.localAddress?.port ?? 0)")
    }

    /// Stops listening; open connections close when their runtime goes away.
    func stop() {
        channel.close(promise: nil)
    }
}

/// Answers one connection's requests.
final class RuntimeAPIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoint: RuntimeEndpoint
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(endpoint: RuntimeEndpoint) {
        self.endpoint = endpoint
    }

    func channelInactive(context: ChannelHandlerContext) {
        endpoint.unpark(ObjectIdentifier(self))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var part):
            if body.readableBytes + part.readableBytes > Dispatcher.maxResponsePayload {
                tooLarge = true
            } else {
                body.writeBuffer(&part)
            }
        case .end(let trailers):
            guard let head else { return }
            self.head = nil
            respond(to: head, trailers: trailers, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        if head.method == .POST, head.uri == "/2018-06-01/galley/store" {
            return callStore(Array(body.readableBytesView), context: context)
        }
        let prefix = "/2018-06-01/runtime/"
        guard head.uri.hasPrefix(prefix) else {
            return write(.notFound, #"{"errorMessage":"Not Found","errorType":"NotFound"}"#, context: context)
        }
        let path = head.uri.dropFirst(prefix.count).split(separator: "?", maxSplits: 1).first ?? ""
        let segments = path.split(separator: "/")
        switch (head.method, segments.count, segments.first, segments.last) {
        case (.GET, 2, "invocation", "next"):
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let endpoint = self.endpoint
            let answer = endpoint.next(on: ObjectIdentifier(self)) { delivery in
                loop.execute {
                    let (handler, context) = bound.value
                    guard context.channel.isActive else { return endpoint.redeliver(delivery) }
                    handler.write(delivery, context: context)
                }
            }
            if answer != .accepted { write(answer, context: context) }
        case (.POST, 2, "init", "error"):
            write(
                endpoint.initError(Data(body.readableBytesView), type: head.headers.first(name: Self.errorType)),
                context: context
            )
        case (.POST, 3, "invocation", let kind?) where kind == "response" || kind == "error":
            let requestID = String(segments[1])
            if let mode = head.headers.first(name: "Lambda-Runtime-Function-Response-Mode"), mode != "streaming" {
                return write(
                    .badRequest,
                    #"{"errorMessage":"Invalid response mode: \#(mode)","errorType":"InvalidFunctionResponseMode"}"#,
                    context: context
                )
            }
            let event: RuntimeEndpoint.Event
            if tooLarge {
                event = .error(
                    Dispatcher.encode(Dispatcher.responseTooLarge),
                    type: Dispatcher.responseTooLarge.errorType
                )
            } else if kind == "error" {
                event = .error(Data(body.readableBytesView), type: head.headers.first(name: Self.errorType))
            } else if let type = trailers?.first(name: Self.errorType) {
                // A streamed response that failed part-way reports its error in trailers.
                let encoded = trailers?.first(name: "Lambda-Runtime-Function-Error-Body") ?? ""
                event = .error(Data(base64Encoded: encoded) ?? Data(), type: type)
            } else {
                event = .response(Data(body.readableBytesView))
            }
            let answer = endpoint.post(requestID, event)
            if tooLarge, answer == .accepted {
                return write(
                    .payloadTooLarge,
                    #"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#,
                    context: context
                )
            }
            write(answer, context: context)
        default:
            write(.notFound, #"{"errorMessage":"Not Found","errorType":"NotFound"}"#, context: context)
        }
    }

    static let errorType = "Lambda-Runtime-Function-Error-Type"

    /// Galley's store for `command` runtimes: the call runs off the event loop, the answer is 200 JSON.
    private func callStore(_ call: [UInt8], context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let endpoint = self.endpoint
        Task {
            let answer = await endpoint.onStoreCall(call)
            loop.execute {
                let (handler, context) = bound.value
                handler.write(.ok, String(decoding: answer, as: UTF8.self), context: context)
            }
        }
    }

    private func write(_ answer: RuntimeEndpoint.Answer, context: ChannelHandlerContext) {
        switch answer {
        case .accepted:
            write(.accepted, #"{"status":"OK"}"#, context: context)
        case .invalidRequestID:
            write(
                .badRequest,
                #"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
                context: context
            )
        case .invalidState(let message):
            write(
                .forbidden,
                #"{"errorType":"InvalidStateTransition","errorMessage":\#(JSONString.quote(message))}"#,
                context: context
            )
        }
    }

    private func write(_ delivery: RuntimeEndpoint.Delivery, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(delivery.payload.count))
        headers.add(name: "Lambda-Runtime-Aws-Request-Id", value: delivery.requestID)
        headers.add(name: "Lambda-Runtime-Deadline-Ms", value: String(delivery.deadlineMs))
        headers.add(name: "Lambda-Runtime-Invoked-Function-Arn", value: delivery.functionARN)
        headers.add(name: "Lambda-Runtime-Trace-Id", value: delivery.traceID)
        if let clientContext = delivery.clientContext {
            headers.add(name: "Lambda-Runtime-Client-Context", value: clientContext)
        }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: delivery.payload)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func write(_ status: HTTPResponseStatus, _ body: String, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
