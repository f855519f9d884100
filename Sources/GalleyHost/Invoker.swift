import Galley
import Logging
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The dispatcher: every path (CLI, Invoke API, routes) hands it an ``Invocation`` and gets the
/// function's result, with Lambda's limits, timeouts and START/END/REPORT logs applied the same way.
public final class Invoker: Sendable {
    /// Sync payloads up to 6 MB, as in Lambda.
    public static let maxSyncPayload = 6_291_456
    /// Async (`Event`) payloads up to 1 MB, as in Lambda.
    public static let maxAsyncPayload = 1_048_576
    /// The init phase ends with an error after 10 s, as in Lambda.
    static let initTimeout: Duration = .seconds(10)

    private let deploymentBox: Mutex<Deployment>
    private let logWriter: LogWriter
    private let logLevel: Logger.Level
    private let stores: @Sendable (Deployment.Function) -> any StoreProvider

    /// - Parameters:
    ///   - stores: The stores a function may use; the default refuses every namespace.
    public init(
        deployment: Deployment,
        logWriter: LogWriter = .standardError(),
        logLevel: Logger.Level = .info,
        stores: @escaping @Sendable (Deployment.Function) -> any StoreProvider = { _ in NoStore() }
    ) {
        self.deploymentBox = Mutex(deployment)
        self.logWriter = logWriter
        self.logLevel = logLevel
        self.stores = stores
    }

    /// The deployment new invocations use.
    public var deployment: Deployment {
        get { deploymentBox.withLock { $0 } }
    }

    /// Switches new invocations to `deployment`; running ones finish on the old one.
    public func replaceDeployment(_ deployment: Deployment) {
        deploymentBox.withLock { $0 = deployment }
    }

    /// Runs `invocation` and returns its result; a function error is a result, not a throw.
    ///
    /// - Throws: ``InvokeError`` when the invocation is refused before any handler runs: unknown
    ///   function, payload not JSON or too large, concurrency limit reached.
    public func invoke(_ invocation: Invocation) async throws(InvokeError) -> InvocationResult {
        let function = try resolve(invocation)
        guard invocation.kind != .dryRun else {
            return InvocationResult(requestID: invocation.requestID, payload: Data(), isFunctionError: false)
        }
        guard let reservation = function.pool.reserve() else {
            throw InvokeError(
                .tooManyRequests,
                "Rate Exceeded.",
                reason: "ReservedFunctionConcurrentInvocationLimitExceeded"
            )
        }
        return await run(invocation, on: function, environment: reservation)
    }

    /// Checks that the function exists and the payload is acceptable, without running anything.
    public func validate(_ invocation: Invocation) throws(InvokeError) {
        _ = try resolve(invocation)
    }

    /// The deployed function an invocation names, after checking its qualifier, size and JSON.
    func resolve(_ invocation: Invocation) throws(InvokeError) -> Deployment.Function {
        guard let function = deployment.functions[invocation.function] else {
            throw InvokeError(
                .functionNotFound,
                "Function not found: \(ARN.function(invocation.function, qualifier: invocation.qualifier))"
            )
        }
        if let qualifier = invocation.qualifier, qualifier != "$LATEST" {
            throw InvokeError(
                .functionNotFound,
                "Function not found: \(ARN.function(invocation.function, qualifier: qualifier)) "
                    + "(Galley deploys only $LATEST)"
            )
        }
        let limit = invocation.kind == .event ? Self.maxAsyncPayload : Self.maxSyncPayload
        guard invocation.payload.count <= limit else {
            throw InvokeError(
                .requestTooLarge,
                "Request must be smaller than \(limit) bytes for the InvokeFunction operation"
            )
        }
        if !invocation.payload.isEmpty {
            do {
                try JSONSyntax.validate(invocation.payload)
            } catch {
                throw InvokeError(
                    .invalidRequestContent,
                    "Could not parse request body into json: \(error)",
                    reason: error.description
                )
            }
        }
        return function
    }

    private func run(
        _ invocation: Invocation,
        on function: Deployment.Function,
        environment reserved: FunctionPool.Environment?
    ) async -> InvocationResult {
        let requestID = invocation.requestID
        let format = logWriter.format
        let log = InvocationLog(writer: logWriter, requestID: requestID, capture: invocation.wantsLogTail)
        let configuration = function.configuration
        let stores = self.stores(function)
        log.append(Report.start(requestID, format: format), flush: false)
        let started = ContinuousClock.now

        var environment = reserved
        var initDuration: Duration?
        var initError: (any Error)?
        let outcome: Result<Data, any Error>
        var status: String?
        if environment == nil {
            do {
                environment = try await prepare(function, stores: stores, deadline: started + Self.initTimeout)
            } catch {
                initError = error
            }
            initDuration = ContinuousClock.now - started
        }
        if let handler = environment?.handler {
            let deadline = ContinuousClock.now + .milliseconds(Int64(configuration.timeout * 1000))
            let context = Context(
                requestID: requestID,
                functionName: function.name,
                invokedFunctionARN: ARN.function(function.name, qualifier: invocation.qualifier),
                deadline: deadline,
                clientContext: invocation.clientContext,
                logger: logger(for: log, function: function),
                environment: configuration.environment,
                stores: stores
            )
            let payload = invocation.payload.isEmpty ? Data("{}".utf8) : invocation.payload
            do {
                outcome = .success(try await withDeadline(deadline) { try await handler.handle(payload, context) })
            } catch {
                outcome = .failure(error)
            }
        } else {
            outcome = .failure(initError ?? InitTimedOut())
            status = "error"
        }

        let duration = ContinuousClock.now - started - (initDuration ?? .zero)
        let result: InvocationResult
        switch outcome {
        case .success(let payload):
            function.pool.release(environment)
            log.append(Report.end(requestID, format: format), flush: false)
            result = InvocationResult(requestID: requestID, payload: payload, isFunctionError: false)
        case .failure(let error as DeadlineExceeded):
            _ = error
            function.pool.release(nil)  // the environment is reset: the next invocation is a cold start
            status = "timeout"
            log.append(Report.end(requestID, format: format), flush: false)
            log.append(Report.timedOut(requestID, after: configuration.timeout, format: format), flush: false)
            let object = ErrorObject(
                errorType: "Sandbox.Timedout",
                errorMessage:
                    "RequestId: \(requestID) Error: Task timed out after \(Milliseconds.twoDecimals(configuration.timeout)) seconds"
            )
            result = InvocationResult(requestID: requestID, payload: Self.encode(object), isFunctionError: true)
        case .failure(let error):
            function.pool.release(environment)
            log.append(Report.end(requestID, format: format), flush: false)
            result = InvocationResult(
                requestID: requestID,
                payload: Self.encode(ErrorObject(error)),
                isFunctionError: true
            )
        }
        let report = Report(
            requestID: requestID,
            duration: duration,
            memorySize: configuration.memory,
            maxMemoryUsed: ResourceUsage.peakMemoryMB(),
            initDuration: initDuration,
            status: status
        )
        log.append(report.line(format: format))
        var finished = result
        if let tail = log.tail { finished.logTail = Data(tail).base64EncodedString() }
        return finished
    }

    /// The init phase of a new environment, bounded by `deadline`.
    private func prepare(
        _ function: Deployment.Function,
        stores: any StoreProvider,
        deadline: ContinuousClock.Instant
    ) async throws -> FunctionPool.Environment {
        let context = InitContext(
            functionName: function.name,
            logger: logger(for: InvocationLog(writer: logWriter, requestID: nil, capture: false), function: function),
            environment: function.configuration.environment,
            stores: stores
        )
        let entry = function.entry
        do {
            return FunctionPool.Environment(
                handler: try await withDeadline(deadline) { try await entry.prepare(context: context) }
            )
        } catch is DeadlineExceeded {
            throw InitTimedOut()
        }
    }

    private func logger(for log: InvocationLog, function: Deployment.Function) -> Logger {
        let level = logLevel
        return Logger(label: function.name) { _ in InvocationLogHandler(log: log, logLevel: level) }
    }

    static func encode(_ object: ErrorObject) -> Data {
        // Field order as the Lambda runtimes write it.
        Data(
            (#"{"errorType":\#(JSONString.quote(object.errorType)),"errorMessage":\#(JSONString.quote(object.errorMessage)),"#
                + #""stackTrace":[\#(object.stackTrace.map(JSONString.quote).joined(separator: ","))]}"#).utf8
        )
    }
}

/// The init phase ran past its 10 s limit.
struct InitTimedOut: Error, CustomStringConvertible {
    var description: String { "the init phase did not finish within 10 seconds" }
}

/// The store access of a host without a store: every namespace is refused.
public struct NoStore: StoreProvider {
    public init() {}
    public func store(namespace: String) throws -> any KeyValueStore {
        throw StoreError(.unavailable, "no key-value store is configured for this host")
    }
}
