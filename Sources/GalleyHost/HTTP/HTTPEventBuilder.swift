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

    /// `text.split(separator: separator).first`, without making the array of pieces when `text`
    /// does not start with the separator.
    static func firstPiece(of text: String, separator: UInt8) -> Substring? {
        guard let first = text.utf8.first, first != separator else {
            return text.split(separator: Character(Unicode.Scalar(separator))).first
        }
        return text[..<(firstIndex(of: separator, in: text) ?? text.endIndex)]
    }

    /// Where `byte` first is in `text`'s UTF-8, read from its buffer: the collection's own search
    /// costs tens of instructions a byte, and a request's target is searched on every request.
    static func firstIndex(of byte: UInt8, in text: String) -> String.Index? {
        let offset: Int?? = text.utf8.withContiguousStorageIfAvailable { $0.firstIndex(of: byte) }
        guard case .some(let found) = offset else { return text.utf8.firstIndex(of: byte) }
        return found.map { text.utf8.index(text.utf8.startIndex, offsetBy: $0) }
    }

    /// Splits `/path?query` into its parts.
    public static func split(target: String) -> (path: String, query: String) {
        // The first `?` byte: a query starts there whatever follows it (not at a Character).
        guard let mark = firstIndex(of: UInt8(ascii: "?"), in: target) else { return (target, "") }
        return (String(target[..<mark]), String(target[target.utf8.index(after: mark)...]))
    }

    /// The event as a value: what ``encode()`` writes, decoded.
    public func build() -> APIGatewayV2Request {
        // The encoder below is the one source of the event; it writes only valid events.
        try! JSONDecoder().decode(APIGatewayV2Request.self, from: Data(encode()))
    }

    /// The event as JSON, written directly into one buffer (no `JSONEncoder`, no intermediate
    /// strings): this runs for every routed request.
    public func encode() -> [UInt8] {
        layOut { JSONEventWriter(capacity: $0) }.json.bytes
    }

    /// The event as values, for a handler in the host's own process: the same event as
    /// ``encode()`` writes, with no JSON text to write and read again.
    package func values() -> EventValue {
        layOut { _ in EventValue.Builder() }.value!
    }

    /// Lays the event out once for both of its forms; `makeWriter` gets the JSON's size, about.
    private func layOut<Writer: EventWriter>(_ makeWriter: (_ capacity: Int) -> Writer) -> Writer {
        var cookies: [Substring] = []
        var others: [(String, String)] = []
        var headerBytes = 0
        for (name, value) in headers {
            headerBytes += name.utf8.count + value.utf8.count + 6
            // HTTP's own names are lower-case already (HTTPTypes' canonical names): not copied.
            let name =
                name.utf8.allSatisfy { $0 < 0x80 && !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
                ? name : name.lowercased()
            if name == "cookie" {
                for piece in value.split(separator: ";") {
                    let cookie = piece.drop { $0 == " " }
                    if !cookie.isEmpty { cookies.append(cookie) }
                }
            } else {
                others.append((name, value))
            }
        }
        let headerGroups = Self.joined(others)
        let queryGroups = Self.joined(queryPairs())
        let contentType = headerGroups.first { $0.name == "content-type" }?.value
        let (bodyText, isBase64) = bodyField(contentType: contentType)
        let milliseconds = self.milliseconds
        let routeKey = route?.routeKey ?? "$default"
        let prefix = Self.firstPiece(of: domainName, separator: UInt8(ascii: ".")) ?? domainName[...]
        func object(_ groups: [(name: String, value: String)], into event: inout Writer) {
            event.openObject()
            for group in groups {
                event.member(group.name)
                event.string(group.value)
            }
            event.closeObject()
        }
        // About what the event takes: its fixed text is under 512 bytes. Kept under 1 KB for a
        // small request, which glibc's malloc serves from its per-thread cache.
        let variable = 2 * (path.utf8.count + query.utf8.count + routeKey.utf8.count + domainName.utf8.count)
        var event = makeWriter(512 + variable + headerBytes + sourceIP.utf8.count + (bodyText?.utf8.count ?? 0))
        event.openObject()
        event.key("version")
        event.string("2.0")
        event.key("routeKey")
        event.string(routeKey)
        event.key("rawPath")
        event.string(path)
        event.key("rawQueryString")
        event.string(query)
        if !cookies.isEmpty {
            event.key("cookies")
            event.strings(cookies)
        }
        event.key("headers")
        object(headerGroups, into: &event)
        if !queryGroups.isEmpty {
            event.key("queryStringParameters")
            object(queryGroups, into: &event)
        }
        if let parameters = route?.pathParameters, !parameters.isEmpty {
            event.key("pathParameters")
            object(parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, into: &event)
        }
        event.key("requestContext")
        event.openObject()
        event.key("accountId")
        event.string(ARN.account)
        event.key("apiId")
        event.string("galley")
        event.key("domainName")
        event.string(domainName)
        event.key("domainPrefix")
        event.string(prefix)
        event.key("http")
        event.openObject()
        event.key("method")
        event.string(method)
        event.key("path")
        event.string(PercentEncoding.decode(path[...]))
        event.key("protocol")
        event.string("HTTP/1.1")
        event.key("sourceIp")
        event.string(sourceIP)
        event.key("userAgent")
        event.string(headerGroups.first { $0.name == "user-agent" }?.value ?? "")
        event.closeObject()
        event.key("requestId")
        event.string(requestID)
        event.key("routeKey")
        event.string(routeKey)
        event.key("stage")
        event.string("$default")
        event.key("time")
        event.string(Self.format(milliseconds: milliseconds))
        event.key("timeEpoch")
        event.integer(milliseconds)
        event.closeObject()
        if let bodyText {
            event.key("body")
            event.string(bodyText)
        }
        event.key("isBase64Encoded")
        event.boolean(isBase64)
        event.closeObject()
        return event
    }

    /// The event as an API Gateway REST API sends it with Lambda proxy integration (payload 1.0,
    /// ``APIGatewayRequest``): for routes written with `"payload": "1.0"`.
    public func encodeV1() -> [UInt8] {
        let headerGroups = Self.group(headers.map { ($0.name, $0.value) }, key: { $0.lowercased() })
        let single = headerGroups.map { ($0.name, $0.values.last!) }
        let multiple = headerGroups.map { ($0.name, $0.values) }
        let queryGroups = Self.group(queryPairs())
        let querySingle = queryGroups.map { ($0.name, $0.values.last!) }
        let queryMultiple = queryGroups.map { ($0.name, $0.values) }
        let contentType = single.first { $0.0.lowercased() == "content-type" }?.1
        let (bodyText, isBase64) = bodyField(contentType: contentType)
        let milliseconds = self.milliseconds
        let decodedPath = PercentEncoding.decode(path[...])
        let resource = route?.route.path ?? decodedPath
        let userAgent = single.first { $0.0.lowercased() == "user-agent" }?.1
        let quote = JSONString.quote
        func object(_ pairs: [(String, String)]) -> String {
            pairs.isEmpty ? "null" : "{" + pairs.map { quote($0.0) + ":" + quote($0.1) }.joined(separator: ",") + "}"
        }
        func lists(_ pairs: [(String, [String])]) -> String {
            pairs.isEmpty
                ? "null"
                : "{"
                    + pairs.map { quote($0.0) + ":[" + $0.1.map(quote).joined(separator: ",") + "]" }.joined(
                        separator: ","
                    )
                    + "}"
        }
        let parameters = route?.pathParameters.sorted { $0.key < $1.key } ?? []
        var json = #"{"resource":\#(quote(resource)),"path":\#(quote(decodedPath)),"httpMethod":\#(quote(method)),"#
        json += #""headers":\#(object(single)),"multiValueHeaders":\#(lists(multiple)),"#
        json += #""queryStringParameters":\#(object(querySingle)),"#
        json += #""multiValueQueryStringParameters":\#(lists(queryMultiple)),"#
        json += #""pathParameters":\#(object(parameters)),"stageVariables":null,"#
        json += #""requestContext":{"accountId":"\#(ARN.account)","apiId":"galley","resourceId":"galley","#
        json += #""resourcePath":\#(quote(resource)),"httpMethod":\#(quote(method)),"path":\#(quote(decodedPath)),"#
        json += #""stage":"$default","requestId":\#(quote(requestID)),"extendedRequestId":\#(quote(requestID)),"#
        json += #""identity":{"sourceIp":\#(quote(sourceIP)),"userAgent":\#(userAgent.map(quote) ?? "null"),"#
        json += #""accountId":null,"caller":null,"user":null,"userArn":null,"cognitoIdentityPoolId":null,"#
        json += #""cognitoIdentityId":null,"cognitoAuthenticationType":null,"cognitoAuthenticationProvider":null,"#
        json += #""accessKey":null},"protocol":"HTTP/1.1","requestTime":"\#(Self.format(milliseconds: milliseconds))","#
        json += #""requestTimeEpoch":\#(milliseconds),"domainName":\#(quote(domainName))},"#
        json += #""body":\#(bodyText.map(quote) ?? "null"),"isBase64Encoded":\#(isBase64)}"#
        return Array(json.utf8)
    }

    /// When the request arrived, in Unix epoch milliseconds.
    var milliseconds: Int64 {
        time.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? Timestamp.epochMilliseconds()
    }

    /// The query's name-value pairs in order, decoded (`+` is a space).
    func queryPairs() -> [(String, String)] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentEncoding.decode(parts[0], plusIsSpace: true)
            return (name, parts.count > 1 ? PercentEncoding.decode(parts[1], plusIsSpace: true) : "")
        }
    }

    /// Values by name, names in the order first seen, and the values of a repeated name joined
    /// with commas, as API Gateway joins them.
    static func joined(_ pairs: [(String, String)]) -> [(name: String, value: String)] {
        var groups: [(name: String, value: String)] = []
        groups.reserveCapacity(pairs.count)
        // A request's few headers are found by a look along them; many, through an index.
        var index: [String: Int]? = pairs.count > 16 ? [:] : nil
        for (name, value) in pairs {
            if let position = index != nil ? index![name] : groups.firstIndex(where: { $0.name == name }) {
                groups[position].value += ","
                groups[position].value += value
            } else {
                index?[name] = groups.count
                groups.append((name, value))
            }
        }
        return groups
    }

    /// Values by name, names in the order first seen (spelled as first seen), values in order.
    /// `key` says which names are one (header names are case-insensitive).
    static func group(
        _ pairs: [(String, String)],
        key: (String) -> String = { $0 }
    ) -> [(name: String, values: [String])] {
        var groups: [(name: String, values: [String])] = []
        var index: [String: Int] = [:]
        for (name, value) in pairs {
            let key = key(name)
            if let position = index[key] {
                groups[position].values.append(value)
            } else {
                index[key] = groups.count
                groups.append((name, [value]))
            }
        }
        return groups
    }

    /// The body as the event carries it: text, or base64 when it is not UTF-8 or its type is binary.
    func bodyField(contentType: String?) -> (text: String?, isBase64: Bool) {
        guard let body, !body.isEmpty else { return (nil, false) }
        if let text = String(validating: body, as: UTF8.self), !Self.looksBinary(contentType) { return (text, false) }
        return (Data(body).base64EncodedString(), true)
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
    static func format(milliseconds: Int64) -> String {
        requestTime.text(at: milliseconds / 1000)
    }

    private static let requestTime = SecondCache { parts in
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func pad(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(pad(parts.tm_mday))/\(months[Int(parts.tm_mon)])/\(parts.tm_year + 1900)"
            + ":\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)) +0000"
    }
}
