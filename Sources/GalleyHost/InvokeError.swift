/// Why an invocation was refused before its handler ran: the caller's mistake or the host's
/// limit, never the function's own failure (that is an ``InvocationResult`` with an error).
public struct InvokeError: Error, Sendable, CustomStringConvertible {
    /// The kind of refusal; each maps to one Lambda service exception.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The Lambda exception name, as in `x-amzn-ErrorType`.
        public let exception: String
        /// The HTTP status the Invoke API answers with.
        public let status: Int

        public static let functionNotFound = Code(exception: "ResourceNotFoundException", status: 404)
        public static let invalidRequestContent = Code(exception: "InvalidRequestContentException", status: 400)
        public static let invalidParameterValue = Code(exception: "InvalidParameterValueException", status: 400)
        public static let requestTooLarge = Code(exception: "RequestTooLargeException", status: 413)
        public static let tooManyRequests = Code(exception: "TooManyRequestsException", status: 429)
        public static let service = Code(exception: "ServiceException", status: 500)

        public var description: String { exception }
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
