#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One request to run a function: the value every path (CLI, Invoke API, routes) hands the ``Invoker``.
public struct Invocation: Sendable {
    /// How the caller waits, as `X-Amz-Invocation-Type`.
    public struct Kind: Hashable, Sendable {
        let name: String
        /// Wait for the result (the default).
        public static let requestResponse = Kind(name: "RequestResponse")
        /// Queue it and return at once.
        public static let event = Kind(name: "Event")
        /// Check the request and run nothing.
        public static let dryRun = Kind(name: "DryRun")
    }

    /// The deployed function's name.
    public var function: String
    /// The version or alias the caller named, if any.
    public var qualifier: String?
    /// The event JSON.
    public var payload: Data
    public var requestID: String
    public var kind: Kind
    /// The decoded `X-Amz-Client-Context` JSON.
    public var clientContext: String?
    /// Whether the result should carry the last 4 KB of the invocation's log.
    public var wantsLogTail: Bool

    public init(
        function: String,
        qualifier: String? = nil,
        payload: Data,
        requestID: String = Invocation.makeRequestID(),
        kind: Kind = .requestResponse,
        clientContext: String? = nil,
        wantsLogTail: Bool = false
    ) {
        self.function = function
        self.qualifier = qualifier
        self.payload = payload
        self.requestID = requestID
        self.kind = kind
        self.clientContext = clientContext
        self.wantsLogTail = wantsLogTail
    }

    /// A fresh lower-case UUID, like Lambda's request ids.
    public static func makeRequestID() -> String {
        UUID().uuidString.lowercased()
    }
}

/// What an invocation returned.
public struct InvocationResult: Sendable {
    public var requestID: String
    /// The function's result, or its error object when ``isFunctionError``.
    public var payload: Data
    /// `true` when the handler threw, timed out or failed its init phase.
    public var isFunctionError: Bool
    /// The last 4 KB of the invocation's log, when the invocation asked for it.
    public var logTail: String?
    /// `$LATEST`: Galley deploys one version of each function.
    public var executedVersion: String { "$LATEST" }
}
