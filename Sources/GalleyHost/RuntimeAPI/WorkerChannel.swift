import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The host's end of a `galley worker`'s private channel: a Unix socket pair made at spawn, read
/// on an event loop. It carries the Runtime API's messages as ``ChannelFrame``s, so an
/// invocation costs the host one write and one read, and no port exists that anyone else could reach.
final class WorkerChannel: Sendable {
    private let channel: any Channel
    private let current = Mutex<String?>(nil)
    /// A descriptor of the host's end of its own, for writing from the caller's thread: an
    /// invocation goes out without a hop to the event loop. Closed (-1) once stopped.
    private let direct: Mutex<Int32>

    private init(channel: any Channel, direct: Int32) {
        self.channel = channel
        self.direct = Mutex(direct)
    }

    /// Takes over `descriptor`, the host's end of the pair. `onEvent` hears what the worker says;
    /// a worker that breaks the framing, or closes its end while alive, is reported as `onBroken`.
    ///
    /// Store calls are answered by `onStoreCall` (a JSON ``StoreCall`` in, its JSON answer out).
    static func start(
        descriptor: Int32,
        onEvent: @escaping @Sendable (RuntimeEndpoint.Event) -> Void,
        onStoreCall: @escaping @Sendable ([UInt8]) async -> [UInt8],
        onBroken: @escaping @Sendable (String) -> Void,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> WorkerChannel {
        let state = WorkerChannelState()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(WorkerFrameDecoder(maxBody: Dispatcher.maxResponsePayload + 4096))
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        WorkerFrameHandler(state: state, onEvent: onEvent, onStoreCall: onStoreCall, onBroken: onBroken)
                    )
                }
            }
            .withConnectedSocket(descriptor)
            .get()
        let worker = WorkerChannel(channel: channel, direct: fcntl(descriptor, F_DUPFD_CLOEXEC, 0))
        state.channel = worker
        return worker
    }

    /// Sends `delivery` to the worker; its answer arrives as an event.
    func deliver(_ delivery: RuntimeEndpoint.Delivery) {
        current.withLock { $0 = delivery.requestID }
        let bytes = ChannelFrame.encode(
            .invoke,
            fields: [delivery.requestID, delivery.functionARN, delivery.traceID, delivery.clientContext ?? ""],
            deadline: delivery.deadlineMs,
            payload: delivery.payload
        )
        send(bytes)
    }

    /// Writes a frame from the calling thread. The worker reads each frame whole before it sends
    /// its next, and only one frame is ever unanswered: whatever the socket does not take at once
    /// follows through the event loop, in order.
    func send(_ bytes: [UInt8]) {
        let sent = direct.withLock { descriptor -> Int in
            guard descriptor >= 0 else { return 0 }
            let count = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            return max(count, 0)
        }
        if sent < bytes.count {
            channel.writeAndFlush(ByteBuffer(bytes: bytes[sent...]), promise: nil)
        }
    }

    /// Takes the answer for `requestID`, if that is the invocation in flight.
    func settle(_ requestID: String) -> Bool {
        current.withLock { current in
            guard current == requestID else { return false }
            current = nil
            return true
        }
    }

    deinit {
        direct.withLock { if $0 >= 0 { close($0) } }
    }

    func stop() {
        direct.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
        channel.close(promise: nil)
    }
}

/// Lets the pipeline's handler find its ``WorkerChannel`` once it exists.
private final class WorkerChannelState: Sendable {
    private let box = Mutex<WorkerChannel?>(nil)
    var channel: WorkerChannel? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}

/// Cuts the stream into frames; a frame over `maxBody` is skipped and reported as too large.
private struct WorkerFrameDecoder: ByteToMessageDecoder {
    enum Frame {
        case frame(ChannelFrame)
        case tooLarge(ChannelFrame.Kind)
    }
    typealias InboundOut = Frame

    let maxBody: Int
    private var skipping = 0

    init(maxBody: Int) {
        self.maxBody = maxBody
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if skipping > 0 {
            let count = min(skipping, buffer.readableBytes)
            buffer.moveReaderIndex(forwardBy: count)
            skipping -= count
            return skipping == 0 ? .continue : .needMoreData
        }
        guard let kindByte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)
        else { return .needMoreData }
        guard let kind = ChannelFrame.Kind(rawValue: kindByte) else {
            throw ChannelError("unknown frame kind \(kindByte)")
        }
        if Int(length) > maxBody {
            buffer.moveReaderIndex(forwardBy: ChannelFrame.headerSize)
            skipping = Int(length)
            context.fireChannelRead(wrapInboundOut(.tooLarge(kind)))
            return .continue
        }
        guard buffer.readableBytes >= ChannelFrame.headerSize + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: ChannelFrame.headerSize)
        let body = buffer.readBytes(length: Int(length)) ?? []
        context.fireChannelRead(wrapInboundOut(.frame(ChannelFrame(kind: kind, body: body))))
        return .continue
    }
}

/// Turns frames into ``RuntimeEndpoint/Event``s for the environment.
private final class WorkerFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WorkerFrameDecoder.Frame

    private let state: WorkerChannelState
    private let onEvent: @Sendable (RuntimeEndpoint.Event) -> Void
    private let onStoreCall: @Sendable ([UInt8]) async -> [UInt8]
    private let onBroken: @Sendable (String) -> Void
    private var initialized = false

    init(
        state: WorkerChannelState,
        onEvent: @escaping @Sendable (RuntimeEndpoint.Event) -> Void,
        onStoreCall: @escaping @Sendable ([UInt8]) async -> [UInt8],
        onBroken: @escaping @Sendable (String) -> Void
    ) {
        self.state = state
        self.onEvent = onEvent
        self.onStoreCall = onStoreCall
        self.onBroken = onBroken
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do throws(ChannelError) {
            switch unwrapInboundIn(data) {
            case .tooLarge(.response), .tooLarge(.error):
                // Whatever invocation is in flight gets Lambda's answer for an oversized result.
                onEvent(
                    .error(
                        Dispatcher.encode(Dispatcher.responseTooLarge),
                        type: Dispatcher.responseTooLarge.errorType
                    )
                )
            case .tooLarge(let kind):
                throw ChannelError("a \(kind) frame over the size limit")
            case .frame(let frame) where frame.kind == .storeCall:
                // The worker waits for the answer; the call runs off the event loop.
                let onStoreCall = self.onStoreCall
                let worker = state.channel
                Task {
                    let answer = await onStoreCall(frame.body)
                    worker?.send(ChannelFrame.encode(.storeAnswer, fields: [], payload: answer))
                }
            case .frame(let frame):
                try handle(frame)
            }
        } catch {
            onBroken(error.description)
            context.close(promise: nil)
        }
    }

    private func handle(_ frame: ChannelFrame) throws(ChannelError) {
        var reader = ChannelFrame.Reader(frame.body)
        switch frame.kind {
        case .ready where !initialized:
            initialized = true
            onEvent(.ready)
        case .initError where !initialized:
            initialized = true
            let type = try reader.string()
            onEvent(.initError(Data(reader.rest()), type: type))
        case .response:
            let requestID = try reader.string()
            guard state.channel?.settle(requestID) == true else {
                throw ChannelError("an answer for \(requestID), which is not the invocation in flight")
            }
            onEvent(.response(Data(reader.rest())))
        case .error:
            let requestID = try reader.string()
            let type = try reader.string()
            guard state.channel?.settle(requestID) == true else {
                throw ChannelError("an error for \(requestID), which is not the invocation in flight")
            }
            onEvent(.error(Data(reader.rest()), type: type))
        default:
            throw ChannelError("a \(frame.kind) frame out of turn")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onBroken("\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onBroken("the worker closed its channel")
        context.fireChannelInactive()
    }
}
