import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The front door of `galley serve --watch`: it holds the public address and forwards each request,
/// whole, to the host generation that is current when the request starts, over that generation's
/// private Unix socket.
///
/// A swap is a change of `current`: requests already forwarded finish on the old generation, the
/// next request of every connection (keep-alive ones included) goes to the new one, and no client
/// connection is closed for it. A request the old generation closed without answering (it was
/// idle in its queue when the old host stopped) is sent again to the current one.
final class FrontProxy: Sendable {
    /// One host generation's private address.
    struct Backend: Sendable, Equatable {
        var generation: Int
        var socketPath: String
    }

    private let backend = Mutex<Backend?>(nil)
    let group: any EventLoopGroup
    let logger: Logger

    init(group: any EventLoopGroup, logger: Logger) {
        self.group = group
        self.logger = logger
    }

    /// Where new requests go from now on.
    var current: Backend? {
        get { backend.withLock { $0 } }
        set { backend.withLock { $0 = newValue } }
    }

    /// Listens on `address`; returns the listening channel.
    func listen(on address: ListenAddress) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true,
                        withErrorHandling: true
                    )
                    try channel.pipeline.syncOperations.addHandler(ProxyConnection(proxy: self))
                }
            }
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .socket(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }
}

/// One client connection: one request at a time (NIO's pipelining assistance holds the next), each
/// buffered whole so that it can be sent again.
private final class ProxyConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let proxy: FrontProxy
    private var context: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: [ByteBuffer] = []
    private var upstream: (backend: FrontProxy.Backend, channel: any Channel)?
    /// Whether the response of the request in flight has started reaching the client.
    private var answering = false
    private var retried = false

    init(proxy: FrontProxy) {
        self.proxy = proxy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.channel.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            answering = false
            retried = false
        case .body(let buffer):
            body.append(buffer)
        case .end:
            forward()
        }
    }

    /// Sends the buffered request to the current generation, on this connection's upstream when it
    /// is the current generation's and idle, else on a new one.
    private func forward() {
        guard let context, let head else { return }
        guard let backend = proxy.current else {
            answer(.serviceUnavailable, "no host is running yet")
            return
        }
        if let upstream, upstream.backend == backend, upstream.channel.isActive {
            send(head, on: upstream.channel)
            return
        }
        upstream?.channel.close(promise: nil)
        upstream = nil
        let loop = context.eventLoop
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(connection: self, loop: loop))
                }
            }
            .connect(unixDomainSocketPath: backend.socketPath)
            .hop(to: loop)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.upstream = (backend, channel)
                    self.send(head, on: channel)
                case .failure(let error):
                    self.proxy.logger.warning("watch: cannot reach build \(backend.generation): \(error)")
                    self.answer(.badGateway, "the host is not answering")
                }
            }
    }

    private func send(_ head: HTTPRequestHead, on channel: any Channel) {
        var head = head
        // The proxy keeps its own connection to the host alive, whatever the client asked.
        head.headers.remove(name: "connection")
        head.headers.remove(name: "keep-alive")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        for buffer in body { channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    // MARK: What the upstream answers

    fileprivate func received(_ part: HTTPClientResponsePart, from channel: any Channel) {
        guard let context, upstream?.channel === channel, let request = head else { return }
        switch part {
        case .head(var response):
            answering = true
            response.headers.remove(name: "connection")
            response.headers.remove(name: "keep-alive")
            if !request.isKeepAlive {
                response.headers.replaceOrAdd(name: "connection", value: "close")
            }
            context.write(wrapOutboundOut(.head(response)), promise: nil)
        case .body(let buffer):
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            let keepAlive = request.isKeepAlive
            head = nil
            body = []
            answering = false
            let client = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).whenComplete { _ in
                if !keepAlive { client.close(promise: nil) }
            }
        }
    }

    fileprivate func upstreamClosed(_ channel: any Channel) {
        guard let context, upstream?.channel === channel else { return }
        let backend = upstream?.backend
        upstream = nil
        guard head != nil else { return }
        if answering {
            // Part of an answer went out: the client cannot be given another.
            context.close(promise: nil)
            return
        }
        // Closed unanswered: a host that was stopping never read it. Once more, on the current one.
        if !retried, let backend, proxy.current != backend {
            retried = true
            forward()
            return
        }
        answer(.badGateway, "the host closed the connection without answering")
    }

    private func answer(_ status: HTTPResponseStatus, _ reason: String) {
        guard let context else { return }
        let keepAlive = head?.isKeepAlive ?? false
        head = nil
        body = []
        var headers = HTTPHeaders()
        let text = "{\"message\":\"\(reason)\"}"
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(text.utf8.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        let client = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { client.close(promise: nil) }
        }
    }
}

/// Hands what a host generation answers back to the client's connection, on its event loop.
private final class UpstreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let connection: ProxyConnection
    private let loop: any EventLoop

    init(connection: ProxyConnection, loop: any EventLoop) {
        self.connection = connection
        self.loop = loop
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        let channel = context.channel
        loop.execute { self.connection.received(part, from: channel) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let channel = context.channel
        loop.execute { self.connection.upstreamClosed(channel) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
