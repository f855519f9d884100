import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What one client may hold of the host: a cap on open connections, and a deadline for sending
/// each request whole. Hummingbird's idle timeout restarts on every byte, so without these a
/// client sending one byte every 20 s keeps its connection forever, and enough of them use up the
/// process's descriptors.
final class ConnectionLimits: Sendable {
    /// Connections open at most; past it a new one gets a 503 and is closed at once.
    let maxConnections: Int
    /// From a request's first byte to its last.
    let requestTimeout: Duration
    let logger: Logger
    private let open = Atomic(0)
    /// When a refusal or a deadline was last logged, in seconds: at most one line a second.
    private let lastLogged = Atomic(Int64(0))

    init(maxConnections: Int, requestTimeout: Duration, logger: Logger) {
        self.maxConnections = maxConnections
        self.requestTimeout = requestTimeout
        self.logger = logger
    }

    /// Counts a new connection in, or returns `false` when the cap is reached.
    func admit() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= maxConnections { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() { open.wrappingSubtract(1, ordering: .relaxed) }

    /// Logs `message` unless a line was logged within the last second (a flood logs one a second).
    func warnRarely(_ message: @autoclosure () -> Logger.Message) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let last = lastLogged.load(ordering: .relaxed)
        guard Int64(now.tv_sec) > last,
            lastLogged.compareExchange(expected: last, desired: Int64(now.tv_sec), ordering: .relaxed).exchanged
        else { return }
        logger.warning(message())
    }

    /// The default cap: half the process's descriptor limit (the rest is for workers, the store
    /// and the Runtime API), at most 10,000.
    static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < 1 << 40 else {
            return 10_000
        }
        return Swift.max(16, Swift.min(10_000, Int(limit.rlim_cur / 2)))
    }

    static let refusal = ByteBuffer(
        string: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 40\r\n"
            + "Retry-After: 1\r\nConnection: close\r\n\r\n{\"message\":\"Too many open connections\"}\n"
    )
}

/// Hummingbird's HTTP/1 channel behind the ``ConnectionLimits``.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let inner: HTTP1Channel
    let limits: ConnectionLimits
    /// What the ``FastLane`` answers with.
    let frontDoor: HostFrontDoor

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard limits.admit() else {
            limits.warnRarely(
                "refused a connection from \(channel.remoteAddress?.description ?? "a client"): \(limits.maxConnections) are open (server.maxConnections)"
            )
            // The channel is not active yet: the refuser answers and closes once it is, and
            // passes nothing on to Hummingbird.
            do {
                try channel.pipeline.syncOperations.addHandler(ConnectionRefuser(), position: .first)
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
            return inner.setup(channel: channel, logger: logger)
        }
        let limits = self.limits
        channel.closeFuture.whenComplete { _ in limits.release() }
        let deadline = RequestDeadline(limits: limits)
        do {
            try channel.pipeline.syncOperations.addHandler(RequestBytesWatcher(deadline: deadline), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        let endWatcher = NIOLoopBound(RequestEndWatcher(deadline: deadline), eventLoop: channel.eventLoop)
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // Between NIO's HTTP/1 decoder and Hummingbird's conversion: it sees each request's end.
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(endWatcher.value, position: .after(decoder))
            // After Hummingbird's own handlers, just before the channel's async stream.
            let state = try operations.handler(type: HTTPConnectionStateHandler.self)
            try operations.addHandler(FastLane(frontDoor: frontDoor, logger: logger), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// The clock of one connection's request: armed by the first byte of a request, disarmed by its
/// end; when it runs out, the connection is closed. Confined to the channel's event loop.
///
/// One timer per connection, not one per request: arming notes the time, disarming clears it, and
/// the timer, when it fires, closes the connection only if the request it finds started a whole
/// timeout ago; otherwise it sets itself for the request in progress, or ends. A keep-alive
/// connection's back-to-back requests then cost a clock read each, not a timer's scheduling and
/// cancelling.
final class RequestDeadline {
    let limits: ConnectionLimits
    private var timer: Scheduled<Void>?
    /// When the request in progress sent its first byte; `nil` between requests.
    private var requestStarted: NIODeadline?

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func bytesArrived(_ context: ChannelHandlerContext) {
        guard requestStarted == nil else { return }
        let now = NIODeadline.now()
        requestStarted = now
        if timer == nil { arm(context.channel, at: now + TimeAmount(limits.requestTimeout)) }
    }

    func requestEnded() {
        requestStarted = nil
    }

    /// The connection is gone: no timer outlives it.
    func channelClosed() {
        requestStarted = nil
        timer?.cancel()
        timer = nil
    }

    private func arm(_ channel: any Channel, at deadline: NIODeadline) {
        timer = channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let started = requestStarted else { return }
            let due = started + TimeAmount(limits.requestTimeout)
            guard due <= .now() else { return arm(channel, at: due) }
            let seconds = limits.requestTimeout.components.seconds
            limits.warnRarely(
                "closed the connection from \(channel.remoteAddress?.description ?? "a client"): its request was not complete within \(seconds) s (server.requestTimeout)"
            )
            channel.close(promise: nil)
        }
    }
}

/// First in the pipeline: any bytes from the client arm the request's deadline.
final class RequestBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let deadline: RequestDeadline

    init(deadline: RequestDeadline) { self.deadline = deadline }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.bytesArrived(context)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.channelClosed()
        context.fireChannelInactive()
    }
}

/// A connection past the cap: answered 503 as soon as it is active, then closed; its bytes are
/// dropped.
final class ConnectionRefuser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        // Closing with the client's request unread would reset the connection and lose the
        // answer: shut down our side, drop what comes, and close within a second regardless.
        context.writeAndFlush(NIOAny(ConnectionLimits.refusal)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// After the HTTP/1 decoder: a request's end disarms its deadline.
final class RequestEndWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    let deadline: RequestDeadline

    init(deadline: RequestDeadline) { self.deadline = deadline }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { deadline.requestEnded() }
        context.fireChannelRead(data)
    }
}
