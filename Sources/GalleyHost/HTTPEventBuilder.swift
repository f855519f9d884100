import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Builds the API Gateway HTTP API (payload 2.0) event for an HTTP request: used by the host for
/// routes and by `galley events http` for event files, so both produce the same event.
public struct HTTPEventBuilder: Sendable {
    public var method: String
    /// The raw (percent-encoded) path, without the query.
    public var path: String
    /// The raw query string, without the leading `?`.
    public var query: String
    /// Header names and values in the order received; repeated names are allowed.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    public var sourceIP: String
    public var domainName: String
    public var requestID: String
    public var route: RouteTable.Match?
    /// When the request arrived; `nil` means now.
    public var time: Date?

    public init(
        method: String,
        path: String,
        query: String = "",
        headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil,
        sourceIP: String = "127.0.0.1",
        domainName: String = "localhost",
        requestID: String = Invocation.makeRequestID(),
        route: RouteTable.Match? = nil,
        time: Date? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.sourceIP = sourceIP
        self.domainName = domainName
        self.requestID = requestID
        self.route = route
        self.time = time
    }

    /// Splits `/path?query` into its parts.
    public static func split(target: String) -> (path: String, query: String) {
        guard let mark = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    public func build() -> APIGatewayV2Request {
        var headerValues: [String: String] = [:]
        var cookies: [String] = []
        for (name, value) in headers {
            let name = name.lowercased()
            if name == "cookie" {
                cookies += value.split(separator: ";").map { String($0.drop { $0 == " " }) }.filter { !$0.isEmpty }
                continue
            }
            headerValues[name] = headerValues[name].map { "\($0),\(value)" } ?? value
        }
        var queryValues: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentEncoding.decode(parts[0], plusIsSpace: true)
            let value = parts.count > 1 ? PercentEncoding.decode(parts[1], plusIsSpace: true) : ""
            queryValues[name] = queryValues[name].map { "\($0),\(value)" } ?? value
        }
        var bodyText: String?
        var isBase64 = false
        if let body, !body.isEmpty {
            if let text = String(validating: body, as: UTF8.self), !Self.looksBinary(headerValues["content-type"]) {
                bodyText = text
            } else {
                bodyText = Data(body).base64EncodedString()
                isBase64 = true
            }
        }
        let now = time ?? Date()
        let routeKey = route.map { $0.route.description } ?? "$default"
        let prefix = domainName.split(separator: ".").first.map(String.init) ?? domainName
        return APIGatewayV2Request(
            routeKey: routeKey,
            rawPath: path,
            rawQueryString: query,
            cookies: cookies.isEmpty ? nil : cookies,
            headers: headerValues,
            queryStringParameters: queryValues.isEmpty ? nil : queryValues,
            pathParameters: route.flatMap { $0.pathParameters.isEmpty ? nil : $0.pathParameters },
            requestContext: .init(
                accountId: ARN.account,
                apiId: "galley",
                domainName: domainName,
                domainPrefix: prefix,
                http: .init(
                    method: method,
                    path: PercentEncoding.decode(path[...]),
                    protocol: "HTTP/1.1",
                    sourceIp: sourceIP,
                    userAgent: headerValues["user-agent"] ?? ""
                ),
                requestId: requestID,
                routeKey: routeKey,
                stage: "$default",
                time: Self.format(now),
                timeEpoch: Int64((now.timeIntervalSince1970 * 1000).rounded())
            ),
            body: bodyText,
            isBase64Encoded: isBase64
        )
    }

    /// Content types whose bodies are sent base64-encoded even when they happen to be valid UTF-8.
    static func looksBinary(_ contentType: String?) -> Bool {
        guard let type = contentType?.lowercased() else { return false }
        let textual =
            type.hasPrefix("text/") || type.contains("json") || type.contains("xml")
            || type.contains("x-www-form-urlencoded") || type.contains("javascript")
        return !textual
            && (type.hasPrefix("image/") || type.hasPrefix("audio/") || type.hasPrefix("video/")
                || type.contains("octet-stream") || type.contains("zip") || type.contains("pdf"))
    }

    /// `12/Mar/2020:19:03:58 +0000`, as API Gateway writes `requestContext.time`.
    static func format(_ date: Date) -> String {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let components = Calendar(identifier: .gregorian).dateComponents(in: .gmt, from: date)
        func pad(_ value: Int?) -> String {
            let value = value ?? 0
            return value < 10 ? "0\(value)" : "\(value)"
        }
        return "\(pad(components.day))/\(months[(components.month ?? 1) - 1])/\(components.year ?? 1970)"
            + ":\(pad(components.hour)):\(pad(components.minute)):\(pad(components.second)) +0000"
    }
}
