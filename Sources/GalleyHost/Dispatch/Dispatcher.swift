import Galley
import Logging
import NIOCore
import NIOPosix
import Tracing

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The dispatcher: every path (CLI, Invoke API, routes, the event queue) hands it an
/// ``Invocation``. It resolves the function, throttles at its `concurrency`, hands the invocation
/// to a warm or new environment and records START/END/REPORT.
public final class Dispatcher: Sendable {
    /// Sync payloads up to 6 MB, as in Lambda.
    public static let maxSyncPayload = 6_291_456
    /// Async (`Event`) payloads up to 1 MB, as in Lambda.
    public static let maxAsyncPayload = 1_048_576
    /// Results (and error objects) up to 6 MiB and 100 bytes, as Lambda's Runtime API (and the
    /// Runtime Interface Emulator) takes them.
    public static let maxResponsePayload = 6_291_556
    /// What the caller gets for a larger result: the function's error, its environment stays.
    static let responseTooLarge = ErrorObject(
        errorType: "Function.ResponseSizeTooLarge",
        errorMessage: "Response payload size exceeded maximum allowed payload size (\(maxResponsePayload) bytes)."
    )

    public let registry: DeploymentRegistry
    let launcher: EnvironmentLauncher
    /// Every invocation's events, as they happen: what the log, metrics and live feeds observe.
    public let events = InvocationEvents()
    /// The tracer of invocation spans; `nil`: the one bootstrapped in `InstrumentationSystem`.
    public let tracer: (any Tracer)?
    /// `tracer`, or the bootstrapped one as it was when the dispatcher was made: reading
    /// `InstrumentationSystem` takes a lock and a cast, on every invocation.
    private let spanTracer: any Tracer
    let logWriter: LogWriter

    /// - Parameters:
    ///   - stores: The stores a function may use (inline, or through the host from a worker); the
    ///     default refuses every namespace.
    ///   - workerExecutable: The `galley` binary that runs Swift handlers in worker processes;
    ///     default: this process's own executable.
    ///   - configurationFolder: The folder `directory` paths are relative to; default: the current one.
    ///   - eventLoopGroup: Where worker channels and Runtime API listeners are read; `galley serve`
    ///     passes its HTTP server's, so that an invocation stays on the server's threads. Default:
    ///     NIO's shared group, started only when a worker process needs it.
    ///   - tracer: Where invocation spans go; default: the tracer bootstrapped in
    ///     `InstrumentationSystem` before this call.
    public init(
        deployment: Deployment,
        logWriter: LogWriter = .standardError(),
        logLevel: Logger.Level = .info,
        stores: @escaping @Sendable (Deployment.Function) -> any StoreProvider = { _ in NoStore() },
        workerExecutable: String? = nil,
        configurationFolder: String = ".",
        eventLoopGroup: (any EventLoopGroup)? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.spanTracer = tracer ?? InstrumentationSystem.tracer
        self.registry = DeploymentRegistry(deployment)
        self.logWriter = logWriter
        var launcher = EnvironmentLauncher(
            workerExecutable: workerExecutable,
            configurationFolder: configurationFolder,
            writer: logWriter,
            logLevel: logLevel,
            stores: stores,
            eventLoopGroup: eventLoopGroup
        )
        launcher.events = events
        self.launcher = launcher
    }

    /// The deployment new invocations use.
    public var deployment: Deployment { registry.deployment }

    /// Switches new invocations to `deployment`. Functions it changed or removed have their
    /// environments shut down: idle ones now, running ones when their invocation finishes.
    public func replaceDeployment(_ deployment: Deployment) {
        let old = registry.replace(with: deployment)
        for (name, function) in old.functions where deployment.functions[name]?.pool !== function.pool {
            Task { await function.pool.retire() }
        }
        prewarm(deployment, previous: old)
    }

    /// Starts the `warm` environments of every function that has none yet.
    public func prewarm() {
        prewarm(deployment, previous: nil)
    }

    private func prewarm(_ deployment: Deployment, previous: Deployment?) {
        for function in deployment.functions.values where function.configuration.warm > 0 {
            if previous?.functions[function.name]?.pool === function.pool { continue }
            let launcher = self.launcher
            let writer = logWriter
            Task {
                for _ in 0..<function.configuration.warm {
                    do throws(EnvironmentFailure) {
                        function.pool.add(try await launcher.start(function, hiding: deployment.privatePaths))
                    } catch {
                        // Not retried: the next invocation runs the init phase again and reports it.
                        writer.write(
                            "\(Timestamp.now())\tERROR\tcould not pre-start \(function.name): "
                                + "\(error.object.errorType): \(error.object.errorMessage)"
                        )
                        return
                    }
                }
            }
        }
    }

    /// Shuts down every environment, waiting for them: the last step of a host's shutdown.
    public func shutdown() async {
        for function in deployment.functions.values { await function.pool.retire() }
        await ChildProcess.killAll()
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
        guard let reservation = function.pool.reserve() else { throw throttled(function) }
        return await run(invocation, on: function, reservation: reservation)
    }

    /// The refusal of an invocation past the function's concurrency, told to the event stream.
    @inline(never)
    private func throttled(_ function: Deployment.Function) -> InvokeError {
        events.publish(.throttle(function: function.name))
        return InvokeError(
            .tooManyRequests,
            "Rate Exceeded.",
            reason: "ReservedFunctionConcurrentInvocationLimitExceeded"
        )
    }

    /// Checks that the function exists and the payload is acceptable, without running anything.
    public func validate(_ invocation: Invocation) throws(InvokeError) {
        _ = try resolve(invocation)
    }

    /// The deployed function an invocation names, after checking its qualifier, size and JSON.
    @inline(never)
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
        // A route's event wraps a body already held to 6 MB: the envelope (headers, base64) is not counted.
        guard invocation.payload.count <= limit || invocation.isRouteEvent else {
            throw InvokeError(
                .requestTooLarge,
                "Request must be smaller than \(limit) bytes for the InvokeFunction operation"
            )
        }
        // A route's event is JSON the host wrote itself: only outside bytes are checked.
        if !invocation.payload.isEmpty, !invocation.isRouteEvent {
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

    /// Runs `invocation` in a span of the tracer (NIO's no-op one unless a tracer was bootstrapped),
    /// a child of the caller's trace headers, with a child span for a cold start's init phase.
    private func run(
        _ invocation: Invocation,
        on function: Deployment.Function,
        reservation: EnvironmentPool.Reservation
    ) async -> InvocationResult {
        let tracer = spanTracer
        // Over HTTP the router's middleware has put the caller's trace in the current context already.
        var context: ServiceContext
        if let current = ServiceContext.current {
            context = current
        } else {
            context = .topLevel
            if !invocation.traceHeaders.isEmpty {
                tracer.extract(invocation.traceHeaders, into: &context, using: TraceHeaderExtractor())
            }
        }
        return await tracer.withSpan("\(function.name) invoke", context: context, ofKind: .server) { span in
            // A span nobody records (no tracer bootstrapped) drops its attributes: not made at all.
            if span.isRecording {
                span.attributes["faas.name"] = function.name
                span.attributes["faas.invocation_id"] = invocation.requestID
                span.attributes["faas.trigger"] = invocation.kind == .event ? "pubsub" : "http"
                if case .cold = reservation { span.attributes["faas.coldstart"] = true }
            }
            let result = await runTraced(invocation, on: function, reservation: reservation, tracer: tracer)
            if result.isFunctionError, span.isRecording {
                span.attributes["faas.error_type"] = ReportedError(result.payload)?.type ?? "Unhandled"
                span.setStatus(SpanStatus(code: .error))
            }
            return result
        }
    }

    /// The invocation in its environment. Only what crosses a suspension lives here; the rest is
    /// in functions of their own, so that this function's frame fits the task allocator's slab.
    private func runTraced(
        _ invocation: Invocation,
        on function: Deployment.Function,
        reservation: EnvironmentPool.Reservation,
        tracer: any Tracer
    ) async -> InvocationResult {
        let record = InvocationRecord(invocation: invocation, function: function, writer: logWriter, events: events)
        let environment: any ExecutionEnvironment
        switch reservation {
        case .warm(let warm):
            environment = warm
        case .cold:
            switch await start(function, record: record, tracer: tracer) {
            case .success(let started):
                environment = started
            case .failure(let error):
                function.pool.release(nil, keep: false)
                return record.finish(error.outcome, peakMemoryMB: 0)
            }
        }
        let outcome = await environment.invoke(Self.request(invocation, function: function, record: record))
        return Self.conclude(outcome, in: environment, of: function, record: record)
    }

    /// A cold start: a new environment for `function`, its init phase in a span of its own.
    private func start(
        _ function: Deployment.Function,
        record: InvocationRecord,
        tracer: any Tracer
    ) async -> Result<any ExecutionEnvironment, EnvironmentFailure> {
        let launcher = self.launcher
        let paths = deployment.privatePaths
        let started: Result<any ExecutionEnvironment, EnvironmentFailure> = await tracer.withSpan(
            "\(function.name) init",
            ofKind: .internal
        ) { span in
            do throws(EnvironmentFailure) {
                // Starting a process blocks in system calls: off the event loop a request may run on.
                return .success(
                    try await withTaskExecutorPreference(globalConcurrentExecutor) {
                        () async throws(EnvironmentFailure) in
                        try await launcher.start(function, hiding: paths)
                    }
                )
            } catch {
                span.setStatus(SpanStatus(code: .error, message: error.object.errorType))
                return .failure(error)
            }
        }
        record.initFinished()
        return started
    }

    /// What an environment is asked to run, with its deadline from now.
    @inline(never)
    private static func request(
        _ invocation: Invocation,
        function: Deployment.Function,
        record: InvocationRecord
    ) -> EnvironmentRequest {
        let deadline = ContinuousClock.now + .milliseconds(Int64(function.configuration.timeout * 1000))
        return EnvironmentRequest(invocation: invocation, function: function, deadline: deadline, log: record.log)
    }

    /// Ends an invocation: its environment back to the pool (or retired), its record closed.
    @inline(never)
    private static func conclude(
        _ outcome: EnvironmentOutcome,
        in environment: any ExecutionEnvironment,
        of function: Deployment.Function,
        record: InvocationRecord
    ) -> InvocationResult {
        var outcome = outcome
        // An inline handler's result has not crossed the Runtime API's own 6 MB check.
        if outcome.payload.count > Self.maxResponsePayload {
            outcome = .handlerError(Self.encode(Self.responseTooLarge))
        }
        function.pool.release(environment, keep: outcome.keepsEnvironment)
        return record.finish(outcome, peakMemoryMB: environment.peakMemoryMB)
    }

    static func encode(_ object: ErrorObject) -> Data {
        // Field order as the Lambda runtimes write it.
        Data(
            (#"{"errorType":\#(JSONString.quote(object.errorType)),"errorMessage":\#(JSONString.quote(object.errorMessage)),"#
                + #""stackTrace":[\#(object.stackTrace.map(JSONString.quote).joined(separator: ","))]}"#).utf8
        )
    }
}

/// The store access of a host without a store: every namespace is refused.
public struct NoStore: StoreProvider {
    public init() {}
    public func store(namespace: String) throws -> any KeyValueStore {
        throw StoreError(.unavailable, "no key-value store is configured for this host")
    }
}
