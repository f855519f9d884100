public import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a handler knows about the invocation it is serving.
public struct Context: Sendable {
    /// The invocation's id, as in `START RequestId: …` and the `x-amzn-RequestId` header.
    public var requestID: String
    /// The deployed function's name (the key in runtime.json).
    public var functionName: String
    /// The ARN the caller used, qualifier included.
    public var invokedFunctionARN: String
    /// The instant at which the host ends the invocation with `Sandbox.Timedout`.
    public var deadline: ContinuousClock.Instant
    /// The decoded `X-Amz-Client-Context` JSON, when the caller sent one.
    public var clientContext: String?
    /// The invocation's X-Ray trace header (`Root=1-…;Parent=…;Sampled=…`), as Lambda hands it to a
    /// runtime (`Lambda-Runtime-Trace-Id`, `_X_AMZN_TRACE_ID`): the caller's `X-Amzn-Trace-Id` or
    /// W3C `traceparent` when it sent one, else a new trace.
    public var traceID: String = ""
    /// A logger whose lines go to the invocation's log (stderr, and `X-Amz-Log-Result`).
    public var logger: Logger
    /// The function's `environment` from runtime.json.
    public var environment: [String: String]
    /// The function's key-value store, scoped to its own namespace.
    public var store: any KeyValueStore {
        get throws { try stores.store(namespace: functionName) }
    }

    package var stores: any StoreProvider

    /// The time left before ``deadline``; negative once it has passed.
    public var remainingTime: Duration { deadline - .now }

    /// The store of another namespace, when runtime.json grants it to this function in `store`.
    ///
    /// - Throws: ``StoreError`` with code `.accessDenied` for a namespace that was not granted.
    public func store(namespace: String) throws -> any KeyValueStore {
        try stores.store(namespace: namespace)
    }

    package init(
        requestID: String,
        functionName: String,
        invokedFunctionARN: String,
        deadline: ContinuousClock.Instant,
        clientContext: String? = nil,
        traceID: String = "",
        logger: Logger,
        environment: [String: String],
        stores: any StoreProvider
    ) {
        self.requestID = requestID
        self.functionName = functionName
        self.invokedFunctionARN = invokedFunctionARN
        self.deadline = deadline
        self.clientContext = clientContext
        self.traceID = traceID
        self.logger = logger
        self.environment = environment
        self.stores = stores
    }
}

/// What a handler knows while its environment is being prepared (Lambda's init phase).
public struct InitContext: Sendable {
    /// The deployed function's name (the key in runtime.json).
    public var functionName: String
    /// A logger for the init phase; its lines go to stderr.
    public var logger: Logger
    /// The function's `environment` from runtime.json.
    public var environment: [String: String]
    /// The function's key-value store, scoped to its own namespace.
    public var store: any KeyValueStore {
        get throws { try stores.store(namespace: functionName) }
    }

    package var stores: any StoreProvider

    /// The store of another namespace, when runtime.json grants it to this function in `store`.
    public func store(namespace: String) throws -> any KeyValueStore {
        try stores.store(namespace: namespace)
    }

    package init(functionName: String, logger: Logger, environment: [String: String], stores: any StoreProvider) {
        self.functionName = functionName
        self.logger = logger
        self.environment = environment
        self.stores = stores
    }
}

/// Hands out the key-value stores a function may use; the host gives each invocation one.
public protocol StoreProvider: Sendable {
    func store(namespace: String) throws -> any KeyValueStore
    /// Returns once every write already started has committed or been abandoned: the host calls
    /// it before answering a timed-out invocation, so that no write lands after the answer.
    func settle() async
}

extension StoreProvider {
    public func settle() async {}
}

/// The deadline of the invocation the current task serves. Stores bound their waits for another
/// process's lock by it, and give up (writing nothing) when it passes.
package enum InvocationDeadline {
    @TaskLocal package static var current: ContinuousClock.Instant?
}

extension Context {
    /// A context for calling a handler directly in a unit test: a fresh request id, `timeout`
    /// seconds to run, a logger that prints, and a store that refuses every call.
    public static func forTesting(
        functionName: String,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(3)
    ) -> Context {
        Context(
            requestID: "test-\(UInt64.random(in: 0...UInt64.max))",
            functionName: functionName,
            invokedFunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:\(functionName)",
            deadline: .now + timeout,
            logger: Logger(label: functionName),
            environment: environment,
            stores: TestingStores()
        )
    }
}

extension InitContext {
    /// An init context for constructing a handler directly in a unit test.
    public static func forTesting(functionName: String, environment: [String: String] = [:]) -> InitContext {
        InitContext(
            functionName: functionName,
            logger: Logger(label: functionName),
            environment: environment,
            stores: TestingStores()
        )
    }
}

/// The store of ``Context/forTesting(functionName:environment:timeout:)``: none.
private struct TestingStores: StoreProvider {
    func store(namespace: String) throws -> any KeyValueStore {
        throw StoreError(.unavailable, "no store in Context.forTesting; test store code against a real store")
    }
}
