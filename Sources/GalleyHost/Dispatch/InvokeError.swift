import Galley

/// Why an invocation was refused before its handler ran: the caller's mistake or the host's
/// limit, never the function's own failure (that is an ``InvocationResult`` with an error).
public struct InvokeError: Error, Sendable, CustomStringConvertible {
    /// The kind of refusal; each maps to one Lambda service exception.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The Lambda exception name, as in `x-amzn-ErrorType`.
        public let exception: String
        /// The HTTP status the Invoke API answers with.
        public let status: Int
        /// `"Message"` or `"message"`: botocore copies members into the exception by exact case.
        let messageKey: String
        /// `"User"` for the caller's faults, `"Service"` for the host's.
        let faultType: String

        init(exception: String, status: Int, messageKey: String = "message", faultType: String = "User") {
            self.exception = exception
            self.status = status
            self.messageKey = messageKey
            self.faultType = faultType
        }

        public static let functionNotFound = Code(
            exception: "ResourceNotFoundException",
            status: 404,
            messageKey: "Message"
        )
        public static let invalidRequestContent = Code(exception: "InvalidRequestContentException", status: 400)
        public static let invalidParameterValue = Code(exception: "InvalidParameterValueException", status: 400)
        public static let requestTooLarge = Code(exception: "RequestTooLargeException", status: 413)
        public static let tooManyRequests = Code(exception: "TooManyRequestsException", status: 429)
        public static let service = Code(
            exception: "ServiceException",
            status: 500,
            messageKey: "Message",
            faultType: "Service"
        )

        public var description: String { exception }

        public static func == (lhs: Code, rhs: Code) -> Bool { lhs.exception == rhs.exception }
        public func hash(into hasher: inout Hasher) { hasher.combine(exception) }
    }

    public var code: Code
    public var message: String
    /// For ``Code/tooManyRequests``: Lambda's `Reason`; for ``Code/invalidRequestContent``: where
    /// the JSON is wrong, e.g. `line 1, column 9: expected ',' or '}' but found 'x'`.
    public var reason: String?

    public init(_ code: Code, _ message: String, reason: String? = nil) {
        self.code = code
        self.message = message
        self.reason = reason
    }

    public var description: String { message }
}

extension InvokeError {
    /// The JSON body botocore maps to its exception classes, e.g.
    /// `{"Type":"User","Message":"Function not found: arn:…"}`.
    public var body: String {
        var body = #"{"Type":"\#(code.faultType)","\#(code.messageKey)":\#(JSONString.quote(message))"#
        if let reason, code == .tooManyRequests { body += #","Reason":\#(JSONString.quote(reason))"# }
        return body + "}"
    }
}
