import Galley
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What `galley serve` answers with: the Lambda Invoke API, the host's own endpoints and console,
/// and the functions' routes. ``router()`` puts them behind Hummingbird's router.
public struct HostResponder: Sendable {
    let dispatcher: Dispatcher
    let events: EventQueue
    let state: HostState
    let logger: Logger
    /// The build of `serve --watch` this host runs, if any.
    var build: String? = nil
    /// The host's metrics and recent invocations (none when runtime.json turns them off).
    var metrics: HostMetrics? = nil
    var recent: RecentInvocations? = nil
    /// The store, for the console (none in hosts built without one).
    var stores: StoreOpener? = nil
    /// When the host started: the `LastModified` of every function.
    let started = Date()

    // MARK: - The host's own endpoints

    func health() -> Response {
        let draining = state.isDraining
        return .json(
            draining ? .serviceUnavailable : .ok,
            draining ? #"{"status":"draining"}"# : #"{"status":"ok"}"#
        )
    }

    func functions() -> Response {
        var document = FunctionsDocument(dispatcher.deployment)
        document.build = build
        return .json(.ok, document.json)
    }

    func metricsExposition() async -> Response {
        guard let metrics else { return .notFound }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        let text = metrics.exposition(
            deployment: dispatcher.deployment,
            queue: await events.functionStatuses(),
            droppedEvents: dispatcher.events.droppedEvents
        )
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Why a request body could not be read: too large (413), or not well framed (400).
enum BodyError: Error {
    case tooLarge
    /// A malformed chunked encoding, or the connection ended early.
    case malformed(String)
}

extension HostResponder {
    /// The whole request body, at most `limit` bytes.
    static func collectBody(of request: Request, upTo limit: Int) async -> Result<ByteBuffer, BodyError> {
        do {
            return .success(try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            return .failure(.tooLarge)
        } catch is HTTPParserError {
            return .failure(.malformed("the chunked encoding is malformed"))
        } catch {
            return .failure(.malformed("the body ended early (\(error))"))
        }
    }
}

/// Whether the host is draining, for `/_galley/health`.
final class HostState: Sendable {
    private let draining = Mutex(false)
    var isDraining: Bool { draining.withLock { $0 } }
    func startDraining() { draining.withLock { $0 = true } }
}

extension Response {
    static func json(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension HTTPField.Name {
    static let amzInvocationType = Self("X-Amz-Invocation-Type")!
    static let amzLogType = Self("X-Amz-Log-Type")!
    static let amzClientContext = Self("X-Amz-Client-Context")!
    static let amzExecutedVersion = Self("X-Amz-Executed-Version")!
    static let amzFunctionError = Self("X-Amz-Function-Error")!
    static let amzLogResult = Self("X-Amz-Log-Result")!
    static let amznRequestID = Self("x-amzn-RequestId")!
    static let amznErrorType = Self("x-amzn-ErrorType")!
    static let amznRemappedContentLength = Self("x-amzn-Remapped-Content-Length")!
    static let apigwRequestID = Self("apigw-requestid")!
    static let forwardedFor = Self("X-Forwarded-For")!
    static let forwardedHost = Self("X-Forwarded-Host")!
}

/// `/_galley/functions`: the loaded configuration, without environment values (they may be secrets).
struct FunctionsDocument: Encodable {
    struct Function: Encodable {
        var handler: String
        var description: String
        var timeout: Double
        var memory: Int
        var concurrency: Int
        var running: Int
        /// Environments warm and waiting.
        var idle: Int
        var routes: [String]
        var environment: [String]
        var store: [String]
    }

    var functions: [String: Function]
    /// Which build of `serve --watch` every environment of this host runs (absent without it).
    var build: String?

    init(_ deployment: Deployment) {
        functions = deployment.functions.mapValues { function in
            let configuration = function.configuration
            return Function(
                handler: configuration.handler,
                description: configuration.description,
                timeout: configuration.timeout,
                memory: configuration.memory,
                concurrency: configuration.concurrency,
                running: function.pool.busy,
                idle: function.pool.idleCount,
                routes: configuration.routes.map(\.description),
                environment: configuration.environment.keys.sorted(),
                store: configuration.store
            )
        }
    }

}

extension Encodable {
    /// The value as JSON text with sorted keys and unescaped slashes, for the host's own documents
    /// (`/_galley/functions`, `FunctionConfiguration`), which cannot fail to encode.
    var json: String {
        let encoder = JSONEncoder.sortingKeys()
        encoder.outputFormatting.insert(.withoutEscapingSlashes)
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
