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
    /// The responder the HTTP server runs.
    public func router() -> RouterResponder<HostRequestContext> {
        let router = Router(context: HostRequestContext.self)
        router.add(middleware: FrontDoorMiddleware(tracer: dispatcher.tracer, metrics: metrics))

        let invokeAPI = router.group("2015-03-31/functions").add(middleware: Gate.invokeAPI(self))
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

        let host = router.group("_galley").add(middleware: Gate.hostEndpoints(self))
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

    fileprivate static func parameter(_ name: String, _ context: HostRequestContext) -> Substring {
        context.parameters.get(name)?[...] ?? ""
    }

    fileprivate static func qualifier(_ request: Request) -> String? {
        request.uri.query.flatMap { queryValue("Qualifier", in: $0) }
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
struct RouteFallback: RouterMiddleware {
    let host: HostResponder

    func handle(
        _ request: Request,
        context: HostRequestContext,
        next: (Request, HostRequestContext) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/_galley/") || path == "/_galley" {
            return .notFound
        }
        if path == "/2015-03-31/functions" || path.hasPrefix("/2015-03-31/functions/"),
            host.dispatcher.deployment.configuration.server.invokeAPI
        {
            return host.unsupported(request)
        }
        return await host.route(request, context: context)
    }
}
