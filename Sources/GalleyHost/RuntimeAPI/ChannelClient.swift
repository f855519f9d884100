import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The worker's end of its private channel to the host: a Unix socket it inherited at start
/// (``WorkerLaunch/channelDescriptor``), never a listening port.
///
/// Blocking reads and writes on one thread: an invocation costs one read and one write.
/// Store calls (from any task of the handler) and the invocation loop take turns on the channel.
final class ChannelClient: RuntimeClient, @unchecked Sendable {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)
    private var announced = false
    /// Held for a whole exchange: one frame out, its answer in.
    private let turn = Mutex(())

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    func nextInvocation() throws(ChannelError) -> NextInvocation {
        let frame = try turn.withLock { _ throws(ChannelError) in
            if !announced {
                announced = true
                try send(ChannelFrame.encode(.ready, fields: [], payload: []))
            }
            return try receive()
        }
        guard frame.kind == .invoke else { throw ChannelError("expected an invocation, got \(frame.kind)") }
        var reader = ChannelFrame.Reader(frame.body)
        let requestID = try reader.string()
        let deadline = try reader.int64()
        let arn = try reader.string()
        let trace = try reader.string()
        let clientContext = try reader.string()
        return NextInvocation(
            requestID: requestID,
            deadlineMs: deadline,
            functionARN: arn,
            traceID: trace,
            clientContext: clientContext.isEmpty ? nil : clientContext,
            payload: reader.rest()
        )
    }

    func respond(to requestID: String, with payload: [UInt8]) throws(ChannelError) {
        try turn.withLock { _ throws(ChannelError) in
            try send(ChannelFrame.encode(.response, fields: [requestID], payload: payload))
        }
    }

    func fail(_ requestID: String, type: String, object: [UInt8]) throws(ChannelError) {
        try turn.withLock { _ throws(ChannelError) in
            try send(ChannelFrame.encode(.error, fields: [requestID, type], payload: object))
        }
    }

    func initError(type: String, object: [UInt8]) {
        turn.withLock { _ in try? send(ChannelFrame.encode(.initError, fields: [type], payload: object)) }
    }

    /// One store call: its JSON out, the host's JSON answer back.
    func storeCall(_ call: [UInt8]) throws(ChannelError) -> [UInt8] {
        try turn.withLock { _ throws(ChannelError) in
            try send(ChannelFrame.encode(.storeCall, fields: [], payload: call))
            let answer = try receive()
            guard answer.kind == .storeAnswer else { throw ChannelError("expected a store answer, got \(answer.kind)") }
            return answer.body
        }
    }

    private func send(_ bytes: [UInt8]) throws(ChannelError) {
        guard RuntimeAPIClient.sendAll(bytes, to: descriptor) else { throw ChannelError("the host closed the channel") }
    }

    private func receive() throws(ChannelError) -> ChannelFrame {
        while true {
            if var frames = Optional(try ChannelFrame.split(&buffer, maxBody: Int(UInt32.max))), !frames.isEmpty {
                // One invocation at a time: the host never sends a second before this one is answered.
                let frame = frames.removeFirst()
                if !frames.isEmpty { throw ChannelError("the host sent a second frame before an answer") }
                return frame
            }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw ChannelError("the host closed the channel") }
            buffer += chunk[..<count]
        }
    }
}
