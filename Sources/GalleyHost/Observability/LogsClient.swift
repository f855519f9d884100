import Galley
import NIOCore
import NIOHTTP1
import NIOPosix

/// Reads a running host's `/_galley/logs` feed (server-sent events) and hands each line's JSON to
/// a closure as it arrives: what `galley logs` runs.
public enum LogsClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Streams `function`'s lines from the host at `address` until the host ends the feed (at once
    /// without `follow`; when the host stops, with it).
    public static func stream(
        from address: ListenAddress,
        function: String,
        since: Int64?,
        filter: String?,
        follow: Bool,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws {
        var query = "function=\(PercentEncoding.encodeQueryValue(function))"
        if let since { query += "&since=\(since)" }
        if let filter { query += "&filter=\(PercentEncoding.encodeQueryValue(filter))" }
        if follow { query += "&follow=true" }
        let finished = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        EventStreamHandler(onLine: onLine, finished: finished)
                    )
                }
            }
        let channel: any Channel
        let host: String
        do {
            switch address {
            case .tcp(let name, let port):
                host = "\(name):\(port)"
                channel = try await bootstrap.connect(host: name, port: port).get()
            case .socket(let path):
                host = "localhost"
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            throw Failure(description: "no galley serve answers at \(address) (\(error)); start one, or pass --url")
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/_galley/logs?\(query)")
        head.headers.add(name: "host", value: host)
        head.headers.add(name: "accept", value: "text/event-stream")
        head.headers.add(name: "connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        try await finished.futureResult.get()
        try? await channel.close()
    }
}

/// Splits the event stream into `data:` payloads; a non-200 answer is a failure with its message.
private final class EventStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let onLine: @Sendable (String) -> Void
    private let finished: EventLoopPromise<Void>
    private var pending: [UInt8] = []
    private var status: HTTPResponseStatus = .ok
    private var done = false

    init(onLine: @escaping @Sendable (String) -> Void, finished: EventLoopPromise<Void>) {
        self.onLine = onLine
        self.finished = finished
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(var buffer):
            pending += buffer.readBytes(length: buffer.readableBytes) ?? []
            guard status == .ok else { return }
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line.hasPrefix("data: ") { onLine(String(line.dropFirst(6))) }
            }
        case .end:
            finish(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !done else { return }
        done = true
        finished.fail(LogsClient.Failure(description: "the feed broke: \(error)"))
        context.close(promise: nil)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        if status == .ok {
            finished.succeed()
        } else {
            let message = String(decoding: pending, as: UTF8.self)
            finished.fail(LogsClient.Failure(description: "the host answered \(status.code): \(message)"))
        }
    }
}
