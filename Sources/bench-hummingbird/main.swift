// The HTTP baseline for `galley serve`: a bare Hummingbird server doing the same work per request
// (decode the event JSON into a struct, encode the same response), with no Galley in between.
//
// Usage: bench-hummingbird PORT [EVENT_LOOPS] [MODE]
//
// MODE makes the server a hand-written reference for one of Galley's paths, so that Galley's own
// share of a path's cost can be told apart:
// - `bare` (the default): the work alone.
// - `lambda`: plus what Lambda's contract asks of every invocation and nothing else: a request
//   id in the answer, START/END/REPORT written to stderr in one write, and the handler run in a
//   task of its own that the caller can stop waiting for at a deadline (an in-process handler that
//   never yields cannot otherwise be timed out).
// - `workers`: `lambda`, with the handler's work done in one of 32 worker processes (this
//   executable started as `bench-hummingbird --worker`), one invocation at a time each, over a
//   Unix socket pair: a length-prefixed message each way, written from the request's task, the
//   answer read on the event loop. No sandbox, no process supervision, no store access.
// - `eventloop`: `workers` with no Swift task at all: a SwiftNIO HTTP/1.1 server (no Hummingbird)
//   whose handler writes the message to a worker and writes the response when the answer arrives,
//   all on the event loop. What a worker path costs when nothing hops between the event loop and
//   Swift's thread pool: the bound of that design.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TestSupport

struct Event: Decodable { var name: String? }
struct Output: Encodable { var message: String }

/// A route's event, at its leanest: the path and its parameters.
struct RouteEvent: Decodable {
    var rawPath: String
    var pathParameters: [String: String]?

    /// The event's JSON for `path` and its `name` parameter.
    static func json(path: String, name: String) -> ByteBuffer {
        ByteBuffer(string: #"{"rawPath":\#(quoted(path)),"pathParameters":{"name":\#(quoted(name))}}"#)
    }
}

/// The handler's work: an event's bytes to the answer's. `route` reads the name from a route's event.
func hello(_ event: some DataProtocol, route: Bool = false) throws -> Data {
    let name =
        route
        ? try JSONDecoder().decode(RouteEvent.self, from: Data(event)).pathParameters?["name"]
        : try JSONDecoder().decode(Event.self, from: Data(event)).name
    return try JSONEncoder().encode(Output(message: "Hello, \(name ?? "world")!"))
}

if CommandLine.arguments.dropFirst().first == "--worker" {
    Worker.run()
}

let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8080
let loops = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? System.coreCount
let mode = CommandLine.arguments.dropFirst(3).first ?? "bare"
guard ["bare", "lambda", "workers", "eventloop"].contains(mode) else {
    FileHandle.standardError.write(Data("bench-hummingbird: MODE is bare, lambda, workers or eventloop\n".utf8))
    exit(2)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
if mode == "eventloop" {
    try await EventLoopServer.run(port: port, group: group, workers: WorkerPool(count: 32, loop: group.next()))
}
let workers = mode == "workers" ? try WorkerPool(count: 32, loop: group.next()) : nil
let router = Router()
// The Invoke API's work: the event in the body (under both function names Galley's benchmark uses).
for function in ["hello", "hello-inline"] {
    router.post(RouterPath("/2015-03-31/functions/\(function)/invocations")) { request, context -> Response in
        let body = try await request.body.collect(upTo: 6_291_456)
        let output: Data
        var headers: HTTPFields = [.contentType: "application/json"]
        if mode == "bare" {
            output = try hello(body.readableBytesView)
        } else {
            let contract = Contract()
            headers[Contract.requestIDHeader] = contract.requestID
            if let workers {
                output = try await workers.invoke(body)
            } else {
                output = try await contract.run { try hello(body.readableBytesView) }
            }
            contract.finish()
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: output)))
    }
}
// A route's work: the name in the path (under both paths Galley's benchmark serves it on).
for path in ["/hello/{name}", "/hello-inline/{name}"] {
    router.get(RouterPath(path)) { request, context -> Response in
        let name = context.parameters.get("name") ?? "world"
        let output: Data
        var headers: HTTPFields = [.contentType: "application/json"]
        if mode == "bare" {
            output = try JSONEncoder().encode(Output(message: "Hello, \(name)!"))
        } else {
            // The function gets an event, not the request: the least of one, the path and its name.
            let event = RouteEvent.json(path: request.uri.path, name: name)
            let contract = Contract()
            headers[Contract.requestIDHeader] = contract.requestID
            if let workers {
                output = try await workers.invoke(event, route: true)
            } else {
                output = try await contract.run { try hello(event.readableBytesView, route: true) }
            }
            contract.finish()
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: output)))
    }
}
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(group)
)
try await app.runService()

/// What Lambda's contract makes every invocation pay, at its leanest.
struct Contract {
    static let requestIDHeader = HTTPField.Name("x-amzn-RequestId")!
    let requestID: String
    let started = ContinuousClock.now

    init() {
        var random = SystemRandomNumberGenerator()
        let (high, low) = (random.next() as UInt64, random.next() as UInt64)
        requestID = String(high, radix: 16) + "-" + String(low, radix: 16)
    }

    /// The handler in its own task; the caller waits on a continuation that a deadline could resume.
    func run(_ work: @escaping @Sendable () throws -> Data) async throws -> Data {
        try await withUnsafeThrowingContinuation { continuation in
            Task { continuation.resume(with: Result { try work() }) }
        }
    }

    /// START, END and REPORT, in one write.
    func finish() {
        let elapsed = ContinuousClock.now - started
        let microseconds = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        let text =
            "START RequestId: \(requestID) Version: $LATEST\nEND RequestId: \(requestID)\n"
            + "REPORT RequestId: \(requestID)\tDuration: \(microseconds / 1000).\(microseconds % 1000 / 10) ms\t"
            + "Billed Duration: \(microseconds / 1000 + 1) ms\tMemory Size: 128 MB\tMax Memory Used: 16 MB\n"
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}

/// `bench-hummingbird --worker`: answers each length-prefixed event on descriptor 3 with the
/// length-prefixed output, until the descriptor closes.
enum Worker {
    static func run() -> Never {
        var header = [UInt8](repeating: 0, count: 4)
        while Descriptors.readFully(3, &header) {
            var body = [UInt8](repeating: 0, count: Int(decodeLength(header)))
            guard Descriptors.readFully(3, &body), let kind = body.first else { break }
            let output = (try? hello(body.dropFirst(), route: kind == 1)) ?? Data("{}".utf8)
            var message = encodeLength(output.count)
            message += output
            _ = message.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        }
        exit(0)
    }
}

/// A JSON string of `text`.
@Sendable func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

func encodeLength(_ length: Int) -> [UInt8] {
    let value = UInt32(length)
    return [
        UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
        UInt8(truncatingIfNeeded: value),
    ]
}

func decodeLength(_ bytes: some Collection<UInt8>) -> UInt32 {
    bytes.reduce(0) { $0 << 8 | UInt32($1) }
}

/// 32 worker processes, idle ones handed out most recently used first.
final class WorkerPool: Sendable {
    final class Connection: Sendable {
        let descriptor: Int32
        /// The invocation waiting for this worker's answer.
        let waiting = Mutex<(@Sendable (Data) -> Void)?>(nil)
        init(descriptor: Int32) { self.descriptor = descriptor }
    }

    private let idle: Mutex<[Connection]>

    init(count: Int, loop: any EventLoop) throws {
        var connections: [Connection] = []
        for _ in 0..<count {
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw POSIXError(.EMFILE)
            }
            try Self.spawnWorker(descriptor: pair[1])
            close(pair[1])
            let connection = Connection(descriptor: pair[0])
            // The answers are read on the event loop, from a duplicate of the host's end.
            let channel = try NIOPipeBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(AnswerDecoder(connection: connection))
                        )
                    }
                }
                .takingOwnershipOfDescriptor(inputOutput: fcntl(pair[0], F_DUPFD_CLOEXEC, 0))
                .wait()
            _ = channel
            connections.append(connection)
        }
        idle = Mutex(connections)
    }

    func invoke(_ event: ByteBuffer, route: Bool = false) async throws -> Data {
        try await withUnsafeThrowingContinuation { continuation in
            send(event, route: route) { continuation.resume(with: $0) }
        }
    }

    /// Sends `event` to an idle worker; `answer` is called on the event loop with its output.
    func send(_ event: ByteBuffer, route: Bool, answer: @escaping @Sendable (Result<Data, any Error>) -> Void) {
        guard let connection = idle.withLock({ $0.popLast() }) else { return answer(.failure(POSIXError(.EBUSY))) }
        connection.waiting.withLock {
            $0 = { [self] output in
                idle.withLock { $0.append(connection) }
                answer(.success(output))
            }
        }
        var message = encodeLength(1 + event.readableBytes)
        message.append(route ? 1 : 0)
        message += event.readableBytesView
        _ = message.withUnsafeBytes { write(connection.descriptor, $0.baseAddress, $0.count) }
    }

    private static func spawnWorker(descriptor: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, descriptor, 3)
        let arguments = [CommandLine.arguments[0], "--worker"]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let executable = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().path
        guard posix_spawn(&pid, executable, &actions, nil, argv, environ) == 0 else { throw POSIXError(.ENOEXEC) }
    }
}

/// A worker's answers: a 4-byte length, then the output; each resumes the waiting invocation.
struct AnswerDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    let connection: WorkerPool.Connection

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            buffer.readableBytes >= 4 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let output = Data(buffer.readBytes(length: Int(length))!)
        connection.waiting.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }?(output)
        return .continue
    }
}

/// `eventloop` mode: HTTP/1.1 on SwiftNIO alone, each invocation handed to a worker and answered
/// from the event loop, with the same contract work as `workers` (request id, START/END/REPORT).
enum EventLoopServer {
    static func run(port: Int, group: MultiThreadedEventLoopGroup, workers: WorkerPool) async throws -> Never {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(Handler(workers: workers))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        try await channel.closeFuture.get()
        exit(0)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let workers: WorkerPool
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(workers: WorkerPool) { self.workers = workers }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let request):
                head = request
                body.clear()
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                guard let head else { return }
                let route = head.uri.hasPrefix("/hello")
                let event: ByteBuffer
                if route {
                    let name = head.uri.split(separator: "/").last.map(String.init) ?? "world"
                    event = RouteEvent.json(path: head.uri, name: name)
                } else {
                    event = body
                }
                let contract = Contract()
                let keepAlive = head.isKeepAlive
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                workers.send(event, route: route) { result in
                    let (handler, context) = bound.value
                    contract.finish()
                    let output = (try? result.get()) ?? Data("{}".utf8)
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: "application/json")
                    headers.add(name: "content-length", value: String(output.count))
                    headers.add(name: "x-amzn-RequestId", value: contract.requestID)
                    if !keepAlive { headers.add(name: "connection", value: "close") }
                    let response = HTTPResponseHead(version: head.version, status: .ok, headers: headers)
                    context.write(handler.wrapOutboundOut(.head(response)), promise: nil)
                    context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: output)))), promise: nil)
                    context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}
