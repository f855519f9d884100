// The HTTP baseline for `galley serve`: a bare Hummingbird server doing the same work per request
// (decode the event JSON into a struct, encode the same response), with no Galley in between.
// Usage: bench-hummingbird PORT [EVENT_LOOPS]
import Foundation
import Hummingbird
import NIOCore
import NIOPosix

struct Event: Decodable { var name: String? }
struct Output: Encodable { var message: String }

let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8080
let loops = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? System.coreCount
let router = Router()
// The Invoke API's work: the event in the body (under both function names Galley's benchmark uses).
for function in ["hello", "hello-inline"] {
    router.post(RouterPath("/2015-03-31/functions/\(function)/invocations")) { request, context -> Response in
        let body = try await request.body.collect(upTo: 6_291_456)
        let event = try JSONDecoder().decode(Event.self, from: Data(body.readableBytesView))
        let output = try JSONEncoder().encode(Output(message: "Hello, \(event.name ?? "world")!"))
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: output))
        )
    }
}
// A route's work: the name in the path (under both paths Galley's benchmark serves it on).
for path in ["/hello/{name}", "/hello-inline/{name}"] {
    router.get(RouterPath(path)) { _, context -> Response in
        let output = try JSONEncoder().encode(Output(message: "Hello, \(context.parameters.get("name") ?? "world")!"))
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: output))
        )
    }
}
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: loops))
)
try await app.runService()
