#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An HTTP request as an API Gateway REST API sends it with Lambda proxy integration (payload
/// format 1.0, SAM's `Api` events).
///
/// Header and query values arrive twice: last value wins in `headers` and
/// `queryStringParameters`, every value in the `multiValue…` dictionaries.
public struct APIGatewayRequest: Codable, Sendable, Equatable {
    public struct RequestContext: Codable, Sendable, Equatable {
        public var accountId: String
        public var apiId: String
        public var resourceId: String
        public var resourcePath: String
        public var httpMethod: String
        public var path: String
        public var stage: String
        public var requestId: String
        public var identity: Identity
        public var `protocol`: String?
        /// Like `09/Apr/2015:12:34:56 +0000`.
        public var requestTime: String?
        /// Milliseconds since 1970.
        public var requestTimeEpoch: Int64
        public var domainName: String?
    }

    public struct Identity: Codable, Sendable, Equatable {
        public var sourceIp: String
        public var userAgent: String?
        public var accountId: String?
        public var caller: String?
        public var user: String?
        public var userArn: String?
        public var cognitoIdentityPoolId: String?
        public var cognitoIdentityId: String?
    }

    /// The resource's path template, like `/hello/{name}`.
    public var resource: String
    public var path: String
    public var httpMethod: String
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var queryStringParameters: [String: String]?
    public var multiValueQueryStringParameters: [String: [String]]?
    public var pathParameters: [String: String]?
    public var stageVariables: [String: String]?
    public var requestContext: RequestContext
    public var body: String?
    public var isBase64Encoded: Bool

    /// The body as bytes, base64-decoded when it arrived that way.
    public var bodyData: Data? {
        guard let body else { return nil }
        return isBase64Encoded ? Data(base64Encoded: body) : Data(body.utf8)
    }
}

/// What a function behind a REST API (or an ALB, with ``ALBTargetGroupResponse``) returns.
public struct APIGatewayResponse: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var body: String?
    public var isBase64Encoded: Bool?

    public init(
        statusCode: Int,
        headers: [String: String]? = nil,
        multiValueHeaders: [String: [String]]? = nil,
        body: String? = nil,
        isBase64Encoded: Bool? = nil
    ) {
        self.statusCode = statusCode
        self.headers = headers
        self.multiValueHeaders = multiValueHeaders
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }
}

/// An HTTP request forwarded by an Application Load Balancer to a Lambda target group.
///
/// `headers` and `queryStringParameters` are present unless the target group enables multi-value
/// headers, in which case the `multiValue…` forms are present instead.
public struct ALBTargetGroupRequest: Codable, Sendable, Equatable {
    public struct RequestContext: Codable, Sendable, Equatable {
        public var elb: ELB
    }

    public struct ELB: Codable, Sendable, Equatable {
        public var targetGroupArn: String
    }

    public var requestContext: RequestContext
    public var httpMethod: String
    public var path: String
    public var queryStringParameters: [String: String]?
    public var multiValueQueryStringParameters: [String: [String]]?
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var body: String
    public var isBase64Encoded: Bool

    /// The body as bytes, base64-decoded when it arrived that way.
    public var bodyData: Data? {
        isBase64Encoded ? Data(base64Encoded: body) : Data(body.utf8)
    }
}

/// What a function behind an Application Load Balancer returns.
public struct ALBTargetGroupResponse: Codable, Sendable, Equatable {
    public var statusCode: Int
    /// Like `200 OK`.
    public var statusDescription: String?
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var body: String
    public var isBase64Encoded: Bool

    public init(
        statusCode: Int,
        statusDescription: String? = nil,
        headers: [String: String]? = nil,
        multiValueHeaders: [String: [String]]? = nil,
        body: String = "",
        isBase64Encoded: Bool = false
    ) {
        self.statusCode = statusCode
        self.statusDescription = statusDescription
        self.headers = headers
        self.multiValueHeaders = multiValueHeaders
        self.body = body
        self.isBase64Encoded = isBase64Encoded
    }
}
