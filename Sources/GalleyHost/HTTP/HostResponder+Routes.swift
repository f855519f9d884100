import Galley
import GalleyStore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Routes for reverse proxies: a request becomes an API Gateway HTTP API (payload 2.0) event, and
/// the function's result becomes the response by the 2.0 rules (`shared/LAMBDA_CONTRACTS.md` §4).
extension HostResponder {
    func route(_ request: Request, context: HostRequestContext) async -> Response {
        await route(request, context: context, match: routeMatch(request.method, target: request.head.path ?? "/"))
    }

    /// The route of runtime.json that a request's method and target (path and query) match.
    func routeMatch(_ method: HTTPRequest.Method, target: String) -> RouteTable.Match? {
        dispatcher.deployment.routes.match(method: method.rawValue, path: HTTPEventBuilder.split(target: target).path)
    }

    /// Invokes the function of the route `match` (a 404 without one) with the request as its event.
    ///
    /// Only what crosses a suspension lives here: the work between them is in functions of their
    /// own (`@inline(never)`), because an async function's frame holds every local of the code
    /// inlined into it, and a frame past the task allocator's slab (about 1 KB) costs a `malloc`
    /// and a `free` on every request.
    func route(_ request: Request, context: HostRequestContext, match: RouteTable.Match?) async -> Response {
        guard let match else { return .notFound }
        let body: ByteBuffer
        switch await Self.collectBody(of: request, upTo: Dispatcher.maxSyncPayload) {
        case .success(let bytes): body = bytes
        case .failure(let failure): return Self.routeRefusal(failure)
        }
        let call = routeCall(request, context: context, match: match, body: body)
        do {
            return routeAnswer(try await dispatcher.invoke(call.invocation), call: call, match: match)
        } catch {
            return routeFailure(error, match: match)
        }
    }

    /// A route's invocation, and what its answer needs to know of the request.
    struct RouteCall {
        var invocation: Invocation
        var isHead: Bool
    }

    /// The request as the route's event.
    @inline(never)
    func routeCall(
        _ request: Request,
        context: HostRequestContext,
        match: RouteTable.Match,
        body: ByteBuffer
    )
        -> RouteCall
    {
        let (path, query) = HTTPEventBuilder.split(target: request.head.path ?? "/")
        let deployment = dispatcher.deployment
        let requestID = Invocation.makeRequestID()
        let trustedProxies = deployment.configuration.server.trustedProxies
        let peer = context.peerAddress
        let trusted = Self.isTrusted(context.remoteAddress, address: peer, trustedProxies)
        var builder = HTTPEventBuilder(
            method: request.method.rawValue,
            path: path,
            query: query,
            headers: request.headers.map { ($0.name.canonicalName, $0.value) },
            body: body.readableBytes > 0 ? Array(body.readableBytesView) : nil,
            sourceIP: Self.clientAddress(
                peer: peer,
                forwardedFor: trusted ? request.headers[.forwardedFor] : nil,
                trustedProxies: trustedProxies
            ),
            requestID: requestID,
            route: match
        )
        let host = (trusted ? request.headers[.forwardedHost] : nil) ?? request.head.authority ?? "localhost"
        builder.domainName = String(HTTPEventBuilder.firstPiece(of: host, separator: UInt8(ascii: ":")) ?? "localhost")
        var invocation = Invocation(function: match.function, payload: Data(), requestID: requestID)
        if match.route.payload == .v1 {
            invocation.payload = Data(builder.encodeV1())
        } else if deployment.functions[match.function]?.configuration.isolation == .inline {
            // A handler in this process decodes the event's values: no JSON to write and read.
            invocation.event = builder.values()
        } else {
            invocation.payload = Data(builder.encode())
        }
        invocation.isRouteEvent = true
        invocation.traceHeaders = Self.traceHeaders(of: request)
        return RouteCall(invocation: invocation, isHead: request.method == .head)
    }

    /// The answer to a route's request whose body could not be read.
    @inline(never)
    static func routeRefusal(_ failure: BodyError) -> Response {
        switch failure {
        case .tooLarge: .json(.contentTooLarge, #"{"message":"Request Entity Too Large"}"#)
        case .malformed: .json(.badRequest, #"{"message":"Bad Request"}"#)
        }
    }

    /// The function's result as the route's response.
    @inline(never)
    func routeAnswer(_ result: InvocationResult, call: RouteCall, match: RouteTable.Match) -> Response {
        let headers: HTTPFields = [.apigwRequestID: call.invocation.requestID]
        guard !result.isFunctionError else {
            return .json(.badGateway, #"{"message":"Internal Server Error"}"#, headers: headers)
        }
        return response(
            for: result.payload,
            headers: headers,
            requestID: call.invocation.requestID,
            isHead: call.isHead,
            payload: match.route.payload
        )
    }

    /// The answer to a route's request that no handler ran for.
    @inline(never)
    func routeFailure(_ error: InvokeError, match: RouteTable.Match) -> Response {
        switch error.code {
        case .tooManyRequests:
            return .json(.tooManyRequests, #"{"message":"Too Many Requests"}"#, headers: [.retryAfter: "1"])
        case .requestTooLarge:
            return .json(.contentTooLarge, #"{"message":"Request Entity Too Large"}"#)
        default:
            logger.error("route \(match.route) could not invoke \(match.function): \(error.message)")
            return .json(.internalServerError, #"{"message":"Internal Server Error"}"#)
        }
    }

    /// What a route's function may answer: the 2.0 fields and the 1.0 ones.
    struct StructuredResponse: Decodable {
        var statusCode: Int
        var headers: [String: String]?
        /// 1.0 only.
        var multiValueHeaders: [String: [String]]?
        /// 2.0 only.
        var cookies: [String]?
        var body: String?
        var isBase64Encoded: Bool?
    }

    /// The 2.0 response rules: a JSON object with `statusCode` is a structured response; any other
    /// JSON is a `200` with that JSON as its body. By the 1.0 rules (REST APIs) only a structured
    /// response is one, with `multiValueHeaders` beside `headers`; anything else is a 502.
    ///
    /// The host owns the framing: a 204 or 304, or any answer to HEAD, goes out without a body, and a
    /// 1xx status (which would leave the connection expecting another response) is a 502.
    func response(
        for payload: Data,
        headers: HTTPFields,
        requestID: String,
        isHead: Bool = false,
        payload version: Route.PayloadVersion = .v2
    ) -> Response {
        let structured = Self.looksStructured(payload)
        if !structured && version == .v1 {
            logger.error(
                "RequestId: \(requestID) a REST (payload 1.0) route's function must answer {\"statusCode\": …, \"body\": …}"
            )
            return .json(.badGateway, #"{"message":"Internal server error"}"#, headers: headers)
        }
        guard structured else {
            var headers = headers
            headers[.contentType] = "application/json"
            return Response(
                status: .ok,
                headers: headers,
                body: .init(byteBuffer: isHead ? ByteBuffer() : ByteBuffer(bytes: payload))
            )
        }
        guard let structured = try? JSONDecoder().decode(StructuredResponse.self, from: payload),
            (100...599).contains(structured.statusCode)
        else {
            logger.error("RequestId: \(requestID) the function returned a malformed HTTP response")
            return .json(.badGateway, #"{"message":"Internal Server Error"}"#, headers: headers)
        }
        guard structured.statusCode >= 200 else {
            logger.error(
                "RequestId: \(requestID) the function answered with status \(structured.statusCode): an informational status is not a response"
            )
            return .json(.badGateway, #"{"message":"Internal Server Error"}"#, headers: headers)
        }
        let bodiless = isHead || structured.statusCode == 204 || structured.statusCode == 304
        var fields = headers
        var ignored: [String] = []
        for (name, value) in structured.headers ?? [:] {
            guard let field = HTTPField.Name(name) else {
                ignored.append(name)
                continue
            }
            // The host frames the response: a function's Content-Length or Transfer-Encoding
            // would desynchronise the connection (and the next request on it).
            guard !Self.framingHeaders.contains(field) else {
                ignored.append(name)
                continue
            }
            fields[field] = value
        }
        if version == .v1 {
            for (name, values) in (structured.multiValueHeaders ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let field = HTTPField.Name(name), !Self.framingHeaders.contains(field) else {
                    ignored.append(name)
                    continue
                }
                // 1.0: a name in both maps takes the values of multiValueHeaders.
                fields[field] = nil
                for value in values { fields.append(HTTPField(name: field, value: value)) }
            }
        } else {
            for cookie in structured.cookies ?? [] { fields.append(HTTPField(name: .setCookie, value: cookie)) }
        }
        if !ignored.isEmpty {
            logger.warning(
                "RequestId: \(requestID) ignored response headers the host sets itself or that are not valid: \(ignored.sorted().joined(separator: ", "))"
            )
        }
        var body = ByteBuffer()
        if let text = structured.body, bodiless, !text.isEmpty {
            logger.warning(
                "RequestId: \(requestID) dropped the body of a \(isHead ? "HEAD answer" : "\(structured.statusCode) response"): it has none"
            )
        } else if let text = structured.body {
            if structured.isBase64Encoded == true {
                guard let bytes = Data(base64Encoded: text) else {
                    logger.error("RequestId: \(requestID) the function's body is marked base64 but is not")
                    return .json(.badGateway, #"{"message":"Internal Server Error"}"#, headers: headers)
                }
                body = ByteBuffer(bytes: bytes)
            } else {
                body = ByteBuffer(string: text)
            }
        }
        return Response(
            status: HTTPResponse.Status(code: structured.statusCode),
            headers: fields,
            body: .init(byteBuffer: body)
        )
    }

    /// Headers that frame the message or the connection (RFC 9110 §7.6.1): the host's, never a
    /// function's.
    static let framingHeaders: Set<HTTPField.Name> = [
        .contentLength, .transferEncoding, .connection, HTTPField.Name("Keep-Alive")!, .te, .trailer, .upgrade,
        HTTPField.Name("Proxy-Connection")!,
    ]

    private static let statusCodeKey = Array(#""statusCode""#.utf8)

    /// Whether `bytes` hold `"statusCode"` or a backslash (an escaped key could spell it).
    static func mayNameStatusCode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        if memchr(base, Int32(UInt8(ascii: "\\")), bytes.count) != nil { return true }
        var offset = 0
        while bytes.count - offset >= statusCodeKey.count,
            let quote = memchr(base + offset, Int32(UInt8(ascii: "\"")), bytes.count - offset - statusCodeKey.count + 1)
        {
            if memcmp(quote, statusCodeKey, statusCodeKey.count) == 0 { return true }
            offset = base.distance(to: UnsafeRawPointer(quote)) + 1
        }
        return false
    }

    /// Whether a result is a JSON object with a top-level `statusCode`.
    static func looksStructured(_ payload: Data) -> Bool {
        guard payload.first == UInt8(ascii: "{") || payload.first == UInt8(ascii: " ") else { return false }
        // Only a payload that spells the key out, or escapes something, can have it: most answers
        // are told apart by two scans, without parsing.
        guard payload.withUnsafeBytes(mayNameStatusCode) else { return false }
        guard let members = try? JSONSyntax.members(of: Array(payload)) else { return false }
        if members["statusCode"] != nil { return true }
        // A key with an escape in it (`"\u0073tatusCode"`) is compared unescaped, as API Gateway reads it.
        guard members.keys.contains(where: { $0.contains("\\") }) else { return false }
        return (try? JSONDecoder().decode(StatusCodeProbe.self, from: payload))?.isPresent == true
    }

    /// Whether an object has a `statusCode` member, whatever its value.
    private struct StatusCodeProbe: Decodable {
        var isPresent: Bool
        enum CodingKeys: String, CodingKey { case statusCode }
        init(from decoder: any Decoder) throws {
            isPresent = try decoder.container(keyedBy: CodingKeys.self).contains(.statusCode)
        }
    }

    /// Whether the peer is a proxy whose forwarding headers are believed: a Unix-socket peer
    /// (on this machine) or an address in `trustedProxies`.
    public static func isTrusted(_ peer: SocketAddress?, _ trustedProxies: [String]) -> Bool {
        isTrusted(peer, address: peer?.ipAddress.map(normalize), trustedProxies)
    }

    /// ``isTrusted(_:_:)`` with the peer's address already written out (``normalize(_:)``d).
    static func isTrusted(_ peer: SocketAddress?, address: String?, _ trustedProxies: [String]) -> Bool {
        guard let peer else { return false }
        if case .unixDomainSocket = peer { return true }
        return address.map { trustedProxies.contains($0) } ?? false
    }

    /// The client's address: the peer, or when the peer is trusted, the right-most address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    public static func clientAddress(peer: SocketAddress?, forwardedFor: String?, trustedProxies: [String]) -> String {
        clientAddress(peer: peer?.ipAddress.map(normalize), forwardedFor: forwardedFor, trustedProxies: trustedProxies)
    }

    /// ``clientAddress(peer:forwardedFor:trustedProxies:)`` with the peer's address already
    /// written out (``normalize(_:)``d).
    static func clientAddress(peer: String?, forwardedFor: String?, trustedProxies: [String]) -> String {
        let peerAddress = peer ?? "127.0.0.1"
        guard let forwardedFor else { return peerAddress }
        let hops = forwardedFor.split(separator: ",").map { String(String($0).trimmingWhitespace) }.filter {
            !$0.isEmpty
        }
        for hop in hops.reversed() where !trustedProxies.contains(normalize(hop)) {
            return hop
        }
        return hops.first ?? peerAddress
    }

    /// `::ffff:127.0.0.1` → `127.0.0.1`.
    static func normalize(_ address: String) -> String {
        address.hasPrefix("::ffff:") && address.contains(".") ? String(address.dropFirst(7)) : address
    }
}
