import HTTPTypes
import Hummingbird
import Instrumentation
import NIOCore
import ServiceContextModule
import Tracing

/// The front door of `galley serve` on Hummingbird's router: the Lambda Invoke API under
/// `/2015-03-31/functions`, the host's own endpoints and console under `/_galley`, and the
/// functions' routes of runtime.json as the router's fallback for every other request.
///
/// Which groups answer is read from the deployment on each request, since a reload may turn the
/// Invoke API or the host's endpoints on or off.
extension HostResponder {
    /// The responder the HTTP server runs: the router, behind a front door that sends the two paths
    /// every invocation takes straight to their handlers.
    public func router() -> HostFrontDoor {
        let frontDoor = FrontDoorMiddleware(tracer: dispatcher.tracer, metrics: metrics)
        return HostFrontDoor(host: self, frontDoor: frontDoor, router: hostRouter(frontDoor))
    }

    /// Hummingbird's router for every endpoint of the host.
    func hostRouter(_ frontDoor: FrontDoorMiddleware) -> RouterResponder<HostRequestContext> {
        let router = Router(context: HostRequestContext.self)
        router.add(middleware: frontDoor)

        let invokeAPI = router.group(RouterPath(Self.invokeAPIPath)).add(middleware: Gate.invokeAPI(self))
        invokeAPI.get { request, _ in listFunctions(dispatcher.deployment) }
        invokeAPI.post(":function/invocations") { request, context in
            await invoke(request, function: Self.parameter("function", context), qualifier: Self.qualifier(request))
        }
        invokeAPI.get(":function") { request, context in
            getFunction(Self.parameter("function", context), qualifier: Self.qualifier(request), wrapped: true)
        }
        invokeAPI.get(":function/configuration") { request, context in
            getFunction(Self.parameter("function", context), qualifier: Self.qualifier(request), wrapped: false)
        }

        let host = router.group(RouterPath(Self.hostPath)).add(middleware: Gate.hostEndpoints(self))
        host.get { _, _ in Console.page }
        host.get("console.js") { _, _ in Console.script }
        host.get("health") { _, _ in health() }
        host.get("functions") { _, _ in functions() }
        host.get("queue") { _, _ in Response.json(.ok, await events.statusJSON()) }
        host.get("metrics") { _, _ in await metricsExposition() }
        host.get("logs") { request, _ in logs(query: request.uri.query ?? "", deployment: dispatcher.deployment) }
        host.get("invocations") { request, _ in invocations(query: request.uri.query ?? "") }
        host.get("store") { _, _ in namespaces() }
        host.get("store/:namespace") { request, context in
            await storeKeys(Self.parameter("namespace", context), query: request.uri.query ?? "")
        }
        host.get("dead-letters/:function") { _, context in await deadLetters(Self.parameter("function", context)) }

        // What changes state needs the same rights as the Invoke API.
        let actions = host.group().add(middleware: Gate.actions(self))
        actions.delete("store/:namespace") { request, context in
            await deleteKey(Self.parameter("namespace", context), query: request.uri.query ?? "")
        }
        actions.post("dead-letters/:function/replay") { request, context in
            await replay(Self.parameter("function", context), query: request.uri.query ?? "")
        }
        actions.post("dead-letters/:function/purge") { request, context in
            await purge(Self.parameter("function", context), query: request.uri.query ?? "")
        }

        // Added last, so that it wraps only the router's not-found responder: the functions' routes.
        router.add(middleware: RouteFallback(host: self))
        return router.buildResponder()
    }

    /// Where the Invoke API and the host's own endpoints are, below `/`: the router's groups, and
    /// the prefixes the front door and the routes' fallback keep for them.
    static let invokeAPIPath = "2015-03-31/functions"
    static let hostPath = "_galley"

    fileprivate static func parameter(_ name: String, _ context: HostRequestContext) -> Substring {
        context.parameters.get(name)?[...] ?? ""
    }

    static func qualifier(_ request: Request) -> String? {
        request.uri.query.flatMap { queryValue("Qualifier", in: $0) }
    }
}

/// What `galley serve` answers with: an Invoke API call (`POST /2015-03-31/functions/NAME/invocations`)
/// and a request for a function's route go to their handlers through the front door's middleware
/// alone; everything else, to the router.
///
/// The router finds a path's endpoint by walking a trie, which cost the Invoke API 3.7% of the host's
/// CPU per invocation, and a route, which the router never matches, 1.1% before reaching its fallback.
/// ``FastPath/classify(method:path:)`` takes a request past the router only where the router would
/// have reached the same handler, so that no answer changes.
///
/// A class: every request's task holds it, and a copy of its fields (the host's responder, the
/// middleware, the router) cost a dozen retains and releases each time.
public final class HostFrontDoor: HTTPResponder, Sendable {
    let host: HostResponder
    let frontDoor: FrontDoorMiddleware
    let router: RouterResponder<HostRequestContext>

    init(host: HostResponder, frontDoor: FrontDoorMiddleware, router: RouterResponder<HostRequestContext>) {
        self.host = host
        self.frontDoor = frontDoor
        self.router = router
    }

    public func respond(to request: Request, context: HostRequestContext) async throws -> Response {
        if let path = fastPath(method: request.method, path: request.uri.path) {
            return try await respond(to: request, context: context, taking: path)
        }
        return try await router.respond(to: request, context: context)
    }

    /// Where a request goes without the router, given what the deployment serves now.
    func fastPath(method: HTTPRequest.Method, path: String) -> FastPath? {
        switch FastPath.classify(method: method, path: path) {
        case .invoke where !host.dispatcher.deployment.configuration.server.invokeAPI: nil
        case let fastPath: fastPath
        }
    }

    /// What a fast path's request is found to need before its task starts.
    struct Plan: Sendable {
        /// The function runs in a worker process. The request's task then only waits for the
        /// worker's answer, which arrives on the event loop, so it is best run there; an inline
        /// handler's request is best run on Swift's pool, beside its handler.
        var invokesWorker: Bool
        /// A route's match (`nil`: none, a 404), found once.
        var match: RouteTable.Match?
    }

    func plan(_ path: FastPath, method: HTTPRequest.Method, target: String) -> Plan {
        let name: String?
        var match: RouteTable.Match?
        switch path {
        case .invoke(let rawName):
            name = HostResponder.functionName(rawName, qualifier: nil)?.0
        case .route:
            match = host.routeMatch(method, target: target)
            name = match?.function
        }
        let function = name.flatMap { host.dispatcher.deployment.functions[$0] }
        return Plan(invokesWorker: function?.configuration.isolation == .process, match: match)
    }

    /// Answers a request that ``fastPath(method:path:)`` sent past the router (with its ``Plan``
    /// when there is one).
    func respond(
        to request: Request,
        context: HostRequestContext,
        taking path: FastPath,
        plan: Plan? = nil
    ) async throws -> Response {
        switch path {
        case .invoke(let function):
            try await frontDoor.handle(request, context: context) { [self] request, _ in
                await host.invoke(request, function: function, qualifier: HostResponder.qualifier(request))
            }
        case .route:
            try await frontDoor.handle(request, context: context) { [self] request, context in
                if let plan {
                    await host.route(request, context: context, match: plan.match)
                } else {
                    await host.route(request, context: context)
                }
            }
        }
    }

    /// Where a request can go without the router.
    public enum FastPath: Equatable, Sendable {
        /// The Invoke API's invocation of a function (its name as the path has it, still encoded).
        case invoke(function: Substring)
        /// A function's route: no endpoint of the router's starts as the path does.
        case route

        /// The router splits a path at every `/` and skips empty pieces; all its endpoints start
        /// with `2015-03-31` or `_galley`. A path whose first piece is neither is the routes'
        /// (the router's fallback); an invocation is a `POST` to exactly
        /// `/2015-03-31/functions/{function}/invocations`. Anything else (`//_galley`, a trailing
        /// slash, another method) is left to the router.
        public static func classify(method: HTTPRequest.Method, path: String) -> FastPath? {
            // On the path's bytes: Unicode-aware `hasPrefix` and `dropFirst` cost more than the
            // router's trie they stand in for.
            var path = path
            let name: Range<Int>? = path.withUTF8 { bytes in
                let slash = UInt8(ascii: "/")
                let start = bytes.firstIndex { $0 != slash } ?? bytes.endIndex
                let end = bytes[start...].firstIndex(of: slash) ?? bytes.endIndex
                let first = UnsafeBufferPointer(rebasing: bytes[start..<end])
                guard first.elementsEqual(version) || first.elementsEqual(galley) else { return 0..<0 }
                guard method == .post, bytes.count > invokePrefix.count + invokeSuffix.count else { return nil }
                let name = invokePrefix.count..<(bytes.count - invokeSuffix.count)
                guard bytes.starts(with: invokePrefix),
                    UnsafeBufferPointer(rebasing: bytes[name.upperBound...]).elementsEqual(invokeSuffix),
                    !bytes[name].contains(slash)
                else { return nil }
                return name
            }
            guard let name else { return nil }
            guard !name.isEmpty else { return .route }
            let utf8 = path.utf8
            let lower = utf8.index(utf8.startIndex, offsetBy: name.lowerBound)
            let upper = utf8.index(utf8.startIndex, offsetBy: name.upperBound)
            return .invoke(function: Substring(utf8[lower..<upper]))
        }

        private static let version = Array(HostResponder.invokeAPIPath.utf8.prefix { $0 != UInt8(ascii: "/") })
        private static let galley = Array(HostResponder.hostPath.utf8)
        private static let invokePrefix = Array("/\(HostResponder.invokeAPIPath)/".utf8)
        private static let invokeSuffix = Array("/invocations".utf8)
    }
}

extension Response {
    /// The 404 of every path nothing answers, as API Gateway writes it.
    static var notFound: Response { .json(.notFound, #"{"message":"Not Found"}"#) }
}

/// What every request goes through, in one middleware (each layer of the router costs every request):
/// the caller's trace (`traceparent` or `X-Amzn-Trace-Id`) put in the request's service context, so
/// that the invocation's span, and whatever else the request does, joins the caller's trace; and,
/// with metrics on, the response counted by status for `galley_http_requests_total`. A request
/// without a trace costs a header lookup.
struct FrontDoorMiddleware: RouterMiddleware {
    /// `nil`: the tracer bootstrapped in `InstrumentationSystem`.
    let tracer: (any Tracer)?
    let metrics: HostMetrics?

    func handle(
        _ request: Request,
        context: HostRequestContext,
        next: (Request, HostRequestContext) async throws -> Response
    ) async throws -> Response {
        let headers = HostResponder.traceHeaders(of: request)
        let response: Response
        if headers.isEmpty {
            response = try await next(request, context)
        } else {
            var serviceContext = ServiceContext.current ?? .topLevel
            (tracer ?? InstrumentationSystem.tracer).extract(
                headers,
                into: &serviceContext,
                using: TraceHeaderExtractor()
            )
            response = try await ServiceContext.$current.withValue(serviceContext) {
                try await next(request, context)
            }
        }
        metrics?.countResponse(status: response.status.code)
        return response
    }
}

/// A group's condition: `refusal` answers instead of the group's endpoints when it returns a
/// response (read per request: a reload may change what runtime.json serves).
struct Gate: RouterMiddleware {
    let refusal: @Sendable (Request, HostRequestContext) async -> Response?

    func handle(
        _ request: Request,
        context: HostRequestContext,
        next: (Request, HostRequestContext) async throws -> Response
    ) async throws -> Response {
        if let refused = await refusal(request, context) { return refused }
        return try await next(request, context)
    }

    /// The Invoke API when runtime.json serves it; otherwise its paths are the functions' routes' to answer.
    static func invokeAPI(_ host: HostResponder) -> Gate {
        Gate { request, context in
            host.dispatcher.deployment.configuration.server.invokeAPI
                ? nil : await host.route(request, context: context)
        }
    }

    /// The host's own endpoints when runtime.json serves them (`server.hostEndpoints`); a 404 otherwise.
    static func hostEndpoints(_ host: HostResponder) -> Gate {
        Gate { _, _ in host.dispatcher.deployment.configuration.server.servesHostEndpoints ? nil : .notFound }
    }

    /// The console's actions (deleting a key, replaying or purging dead letters) need the rights of
    /// the Invoke API: it must be served. And they must come from a script of the console's own
    /// origin: the `X-Galley-Console` header makes a browser ask before a page of another origin
    /// can send one, and the host never says yes (no CORS), so a web page cannot act for its visitor.
    static func actions(_ host: HostResponder) -> Gate {
        Gate { request, _ in
            guard host.dispatcher.deployment.configuration.server.invokeAPI else {
                return .json(
                    .forbidden,
                    #"{"message":"this host does not serve the Invoke API (server.invokeAPI), so it takes no actions"}"#
                )
            }
            guard request.headers[consoleHeader] != nil else {
                return .json(.forbidden, #"{"message":"actions need the X-Galley-Console header"}"#)
            }
            return nil
        }
    }

    static let consoleHeader = HTTPField.Name("X-Galley-Console")!
}

/// The functions' routes (runtime.json), for every request the router has no endpoint for.
///
/// Two prefixes never reach them (runtime.json cannot declare a route there, but `/{proxy+}`
/// would match): the rest of the Invoke API is an operation Galley does not serve, said as
/// botocore reads it, and the rest of `/_galley/` does not exist. The router cannot say "any
/// method, any depth, below a path that also has parameters" without overriding its own routes.
///
/// The prefixes are compared piece by piece, skipping empty pieces as the router does: `//_galley/x`
/// is below `/_galley` for the router (`//_galley/health` is the health endpoint), so it is here too.
struct RouteFallback: RouterMiddleware {
    static let hostEndpoints = HostResponder.hostPath.split(separator: "/")
    static let invokeAPI = HostResponder.invokeAPIPath.split(separator: "/")

    let host: HostResponder

    func handle(
        _ request: Request,
        context: HostRequestContext,
        next: (Request, HostRequestContext) async throws -> Response
    ) async throws -> Response {
        let pieces = request.uri.path.split(separator: "/")
        if pieces.starts(with: Self.hostEndpoints) {
            return .notFound
        }
        if pieces.starts(with: Self.invokeAPI), host.dispatcher.deployment.configuration.server.invokeAPI {
            return host.unsupported(request)
        }
        return await host.route(request, context: context)
    }
}
