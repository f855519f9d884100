#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An HTTP request as API Gateway HTTP APIs (payload format 2.0) and Lambda function URLs send
/// it: what a function behind one of its `routes` receives.
///
/// Header names are lower-case; repeated headers and query parameters are joined with commas;
/// `Cookie` headers arrive in ``cookies``; binary bodies arrive base64-encoded with
/// ``isBase64Encoded`` set.
public struct APIGatewayV2Request: Codable, Sendable, Equatable {
    public struct RequestContext: Codable, Sendable, Equatable {
        public struct HTTP: Codable, Sendable, Equatable {
            public var method: String
            public var path: String
            public var `protocol`: String
            public var sourceIp: String
            public var userAgent: String

            public init(method: String, path: String, protocol: String, sourceIp: String, userAgent: String) {
                self.method = method
                self.path = path
                self.protocol = `protocol`
                self.sourceIp = sourceIp
                self.userAgent = userAgent
            }
        }

        public var accountId: String
        public var apiId: String
        public var domainName: String
        public var domainPrefix: String
        public var http: HTTP
        public var requestId: String
        public var routeKey: String
        public var stage: String
        /// Like `12/Mar/2020:19:03:58 +0000`.
        public var time: String
        /// Milliseconds since 1970.
        public var timeEpoch: Int64

        public init(
            accountId: String,
            apiId: String,
            domainName: String,
            domainPrefix: String,
            http: HTTP,
            requestId: String,
            routeKey: String,
            stage: String,
            time: String,
            timeEpoch: Int64
        ) {
            self.accountId = accountId
            self.apiId = apiId
            self.domainName = domainName
            self.domainPrefix = domainPrefix
            self.http = http
            self.requestId = requestId
            self.routeKey = routeKey
            self.stage = stage
            self.time = time
            self.timeEpoch = timeEpoch
        }
    }

    public var version: String
    /// The matched route, e.g. `GET /hello/{name}`.
    public var routeKey: String
    public var rawPath: String
    /// The query string without its leading `?`.
    public var rawQueryString: String
    public var cookies: [String]?
    public var headers: [String: String]
    public var queryStringParameters: [String: String]?
    public var pathParameters: [String: String]?
    public var stageVariables: [String: String]?
    public var requestContext: RequestContext
    public var body: String?
    public var isBase64Encoded: Bool

    public init(
        routeKey: String,
        rawPath: String,
        rawQueryString: String,
        cookies: [String]?,
        headers: [String: String],
        queryStringParameters: [String: String]?,
        pathParameters: [String: String]?,
        requestContext: RequestContext,
        body: String?,
        isBase64Encoded: Bool
    ) {
        self.version = "2.0"
        self.routeKey = routeKey
        self.rawPath = rawPath
        self.rawQueryString = rawQueryString
        self.cookies = cookies
        self.headers = headers
        self.queryStringParameters = queryStringParameters
        self.pathParameters = pathParameters
        self.stageVariables = nil
        self.requestContext = requestContext
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }

    /// The body as bytes, base64-decoded when it arrived that way.
    public var bodyData: Data? {
        guard let body else { return nil }
        return isBase64Encoded ? Data(base64Encoded: body) : Data(body.utf8)
    }

    /// The body decoded from JSON.
    public func decodeBody<Value: Decodable>(as type: Value.Type) throws -> Value {
        try JSONDecoder().decode(Value.self, from: bodyData ?? Data())
    }
}

/// What a function behind a route returns to choose the HTTP status, headers and body.
///
/// Any other JSON result is sent as a `200` with `content-type: application/json`.
public struct APIGatewayV2Response: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var headers: [String: String]?
    /// Each becomes its own `set-cookie` header.
    public var cookies: [String]?
    public var body: String?
    public var isBase64Encoded: Bool?

    public init(
        statusCode: Int,
        headers: [String: String]? = nil,
        cookies: [String]? = nil,
        body: String? = nil,
        isBase64Encoded: Bool? = nil
    ) {
        self.statusCode = statusCode
        self.headers = headers
        self.cookies = cookies
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }

    /// A response whose body is `value` encoded as JSON.
    public init<Value: Encodable>(statusCode: Int = 200, json value: Value, headers: [String: String] = [:]) throws {
        var headers = headers
        headers["content-type"] = headers["content-type"] ?? "application/json"
        let body = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        self.init(statusCode: statusCode, headers: headers, body: body, isBase64Encoded: false)
    }
}
