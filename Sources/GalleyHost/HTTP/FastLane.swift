import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// The two paths every invocation takes (an Invoke API call and a function's route), answered from
/// the connection's channel with one task per request, instead of through Hummingbird's loop of
/// the connection.
///
/// Hummingbird runs each connection as a task that reads request parts from an async stream and
/// writes the response through an async writer: each request crosses between the event loop and
/// Swift's thread pool several times, and its streams, writers and request context cost more than
/// the invocation itself. This handler sits at the end of the connection's pipeline, after
/// Hummingbird's own handlers (so its idle timeout, graceful shutdown and connection limits see
/// every request) and before the channel's async stream. It keeps a request whose head says it goes
/// to a fast path until the request is whole, runs it in a task through ``HostFrontDoor``, the same
/// code Hummingbird's loop calls, and writes the answer on the event loop.
///
/// Anything else goes to Hummingbird unchanged and in order: another path, a body larger than a
/// function's payload, a request cut short by a parse error or the end of the input. A request
/// with `Connection: close` ends the connection as Hummingbird's loop does: its answer is the last
/// thing written, and the output is closed after it.
///
/// Answers leave in the order their requests came: a fast request waits while Hummingbird still
/// owes an answer, and every part that arrives while a fast request is being answered waits (and
/// reading pauses) until it is.
final class FastLane: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What arrived from the channel, in order.
    private enum Arrival {
        case part(HTTPRequestPart)
        case error(any Error)
        case event(Any)
    }

    private let frontDoor: HostFrontDoor
    private let logger: Logger
    /// The largest body kept: a function's payload limit. A larger one goes to Hummingbird, whose
    /// endpoints answer it as they always did (413).
    private let maxBody: Int

    /// The fast request being read: its head, where it goes, and its body so far.
    private var reading: (head: HTTPRequest, path: HostFrontDoor.FastPath)?
    private var body = ByteBuffer()
    /// A fast request is being answered.
    private var answering = false
    /// Requests passed to Hummingbird whose answer has not ended yet.
    private var owedByHummingbird = 0
    /// What arrived while it could not be dealt with yet.
    private var waiting = CircularBuffer<Arrival>()
    /// A read the pipeline asked for while parts were waiting.
    private var readHeld = false
    /// Parts passed on since the last read-complete Hummingbird's stream was told of.
    private var passedOn = false
    /// The connection's peer and its address as text, worked out at its first fast request.
    private var peer: (address: SocketAddress?, text: String?)?

    init(frontDoor: HostFrontDoor, logger: Logger, maxBody: Int = Dispatcher.maxSyncPayload) {
        self.frontDoor = frontDoor
        self.logger = logger
        self.maxBody = maxBody
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        take(.part(unwrapInboundIn(data)), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        passedOn = false
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        take(.error(error), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        take(.event(event), context: context)
    }

    func read(context: ChannelHandlerContext) {
        if waiting.isEmpty { context.read() } else { readHeld = true }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Hummingbird's answers pass here (the fast lane's own start from this handler's context).
        if case .end = unwrapOutboundIn(data) {
            owedByHummingbird = max(0, owedByHummingbird - 1)
            if owedByHummingbird == 0, !waiting.isEmpty {
                context.eventLoop.assumeIsolated().execute { self.resume(context: context) }
            }
        }
        context.write(data, promise: promise)
    }

    private func take(_ arrival: Arrival, context: ChannelHandlerContext) {
        if !waiting.isEmpty || !handle(arrival, context: context) {
            waiting.append(arrival)
        }
    }

    /// Deals with what waited, in order, until something must wait again.
    private func resume(context: ChannelHandlerContext) {
        while let next = waiting.first, handle(next, context: context) {
            waiting.removeFirst()
        }
        if passedOn {
            passedOn = false
            context.fireChannelReadComplete()
        }
        if waiting.isEmpty, readHeld {
            readHeld = false
            context.read()
        }
    }

    /// Deals with one arrival, or returns `false` when it must wait.
    private func handle(_ arrival: Arrival, context: ChannelHandlerContext) -> Bool {
        if answering { return false }
        switch arrival {
        case .part(.head(let head)):
            if let path = fastPath(of: head) {
                guard owedByHummingbird == 0 else { return false }
                reading = (head, path)
            } else {
                owedByHummingbird += 1
                passOn(.head(head), context: context)
            }
        case .part(.body(var part)):
            if reading == nil {
                passOn(.body(part), context: context)
            } else if body.readableBytes + part.readableBytes > maxBody {
                handOver(context: context)
                passOn(.body(part), context: context)
            } else {
                body.writeBuffer(&part)
            }
        case .part(.end(let trailers)):
            if let whole = reading {
                reading = nil
                answer(Request(head: whole.head, body: .init(buffer: body)), path: whole.path, context: context)
                body = ByteBuffer()
            } else {
                passOn(.end(trailers), context: context)
            }
        case .error(let error):
            handOver(context: context)
            context.fireErrorCaught(error)
        case .event(let event):
            handOver(context: context)
            context.fireUserInboundEventTriggered(event)
        }
        return true
    }

    private func fastPath(of head: HTTPRequest) -> HostFrontDoor.FastPath? {
        let target = head.path ?? ""
        // An origin-form target (`/path?query`) is split as a route's is; any other form is left to
        // Hummingbird's parser.
        guard target.utf8.first == UInt8(ascii: "/") else {
            return frontDoor.fastPath(method: head.method, path: URI(target).path)
        }
        return frontDoor.fastPath(method: head.method, path: HTTPEventBuilder.split(target: target).path)
    }

    /// Gives the request being read to Hummingbird, as far as it came.
    private func handOver(context: ChannelHandlerContext) {
        guard let partial = reading else { return }
        reading = nil
        owedByHummingbird += 1
        passOn(.head(partial.head), context: context)
        if body.readableBytes > 0 { passOn(.body(body), context: context) }
        body = ByteBuffer()
    }

    private func passOn(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        passedOn = true
        context.fireChannelRead(wrapInboundOut(part))
    }

    /// Runs the request through the front door in a task of its own, and writes the answer on the
    /// event loop, as Hummingbird's application would have: its `Date` and `Server` headers, and a
    /// 500 for an error the responder throws.
    private func answer(_ request: Request, path: HostFrontDoor.FastPath, context: ChannelHandlerContext) {
        answering = true
        let channel = context.channel
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let plan = frontDoor.plan(path, method: request.method, target: request.head.path ?? "/")
        if peer == nil {
            let address = channel.remoteAddress
            peer = (address, address?.ipAddress.map(HostResponder.normalize))
        }
        let peer = self.peer
        let work: @Sendable () async -> Void = { [frontDoor, logger] in
            let requestContext = HostRequestContext(
                source: .init(channel: channel, logger: logger),
                remoteAddress: peer?.address,
                peerAddress: peer?.text
            )
            let response: Response
            do {
                response = try await frontDoor.respond(to: request, context: requestContext, taking: path, plan: plan)
            } catch {
                logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            await Self.send(response, closing: request.headers[.connection] == "close", through: bound)
        }
        // A task given a preferred executor, even none, pays a lock at each of its suspensions.
        if plan.invokesWorker {
            Task(executorPreference: EventLoopExecutor(channel.eventLoop), operation: work)
        } else {
            Task(operation: work)
        }
    }

    /// Writes `response` on the event loop, with the headers Hummingbird's loop adds; `closing`
    /// (`Connection: close`, the exact value that ends a connection there) closes the output after it.
    private static func send(
        _ response: Response,
        closing closes: Bool,
        through bound: NIOLoopBound<(FastLane, ChannelHandlerContext)>
    ) async {
        var response = response
        response.headers[.date] = HTTPDate.now
        response.headers[.server] = FunctionHost.serverName
        let collector = BodyCollector()
        try? await response.body.write(collector.writer)
        let (parts, trailers) = collector.collected
        let head = response.head
        bound.eventLoop.execute {
            let (handler, context) = bound.value
            handler.finishAnswer(head: head, parts: parts, trailers: trailers, closes: closes, context: context)
        }
    }

    private func finishAnswer(
        head: HTTPResponse,
        parts: [ByteBuffer],
        trailers: HTTPFields?,
        closes: Bool,
        context: ChannelHandlerContext
    ) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        for part in parts { context.write(wrapOutboundOut(.body(part)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        answering = false
        if closes {
            // NIO's decoder reads no request after this one: what follows is a parse error, which
            // Hummingbird would answer with a 400 the client does not expect.
            let close = context.eventLoop.makePromise(of: Void.self)
            close.futureResult.assumeIsolated().whenFailure { _ in context.close(promise: nil) }
            context.close(mode: .output, promise: close)
        }
        resume(context: context)
    }
}

/// A response's body, collected whole: the fast lane's answers are a function's result, already
/// in memory.
private struct BodyCollector {
    final class Storage: @unchecked Sendable {
        var parts: [ByteBuffer] = []
        var trailers: HTTPFields?
    }

    struct Writer: ResponseBodyWriter {
        let storage: Storage
        mutating func write(_ buffer: ByteBuffer) async throws { storage.parts.append(buffer) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws { storage.trailers = trailingHeaders }
    }

    private let storage = Storage()
    var writer: Writer { Writer(storage: storage) }
    var collected: ([ByteBuffer], HTTPFields?) { (storage.parts, storage.trailers) }
}

/// An event loop as the executor a task prefers: the task's jobs run on the loop's thread.
///
/// A request for a worker's function only waits: for the channel's write and the worker's answer,
/// both on the event loop. Run there, it crosses no thread; run on Swift's pool, it crosses four
/// times (measured: 30% more throughput on the loop, and 8% less for an inline handler's request,
/// which is why those stay on the pool).
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
