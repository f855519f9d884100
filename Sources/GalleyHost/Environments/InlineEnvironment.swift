import Galley
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `"isolation": "inline"`: the handler runs inside the host process.
///
/// The fastest path, for trusted functions only: a handler that traps ends the host, one that
/// never yields keeps one of Swift's cooperative threads after its timeout (it is abandoned, not
/// killed), and its memory is the host's.
final class InlineEnvironment: ExecutionEnvironment {
    private let handler: PreparedHandler
    private let stores: any StoreProvider
    private let logLevel: Logger.Level

    private init(handler: PreparedHandler, stores: any StoreProvider, logLevel: Logger.Level) {
        self.handler = handler
        self.stores = stores
        self.logLevel = logLevel
    }

    /// Runs the init phase of `entry`, bounded by `deadline`.
    static func start(
        _ function: Deployment.Function,
        entry: Catalog.Entry,
        stores: any StoreProvider,
        writer: LogWriter,
        events: InvocationEvents? = nil,
        logLevel: Logger.Level,
        deadline: ContinuousClock.Instant
    ) async throws(EnvironmentFailure) -> InlineEnvironment {
        let context = InitContext(
            functionName: function.name,
            logger: InvocationLogHandler.logger(
                for: InvocationLog(
                    writer: writer,
                    requestID: nil,
                    capture: false,
                    function: function.name,
                    events: events
                ),
                label: function.name,
                level: logLevel
            ),
            environment: function.configuration.environment,
            stores: stores
        )
        do {
            let handler = try await withDeadline(deadline) { try await entry.prepare(context: context) }
            return InlineEnvironment(handler: handler, stores: stores, logLevel: logLevel)
        } catch is DeadlineExceeded {
            throw EnvironmentFailure(object: .initTimedOut)
        } catch {
            throw EnvironmentFailure(object: ErrorObject(error))
        }
    }

    func invoke(_ request: EnvironmentRequest) async -> EnvironmentOutcome {
        let invocation = request.invocation
        let function = request.function
        let context = Context(
            requestID: invocation.requestID,
            functionName: function.name,
            invokedFunctionARN: ARN.function(function.name, qualifier: invocation.qualifier),
            deadline: request.deadline,
            clientContext: invocation.clientContext,
            traceID: TraceHeader.xray(invocation.traceHeaders) ?? ProcessEnvironment.traceID(),
            logger: InvocationLogHandler.logger(for: request.log, label: function.name, level: logLevel),
            environment: function.configuration.environment,
            stores: stores
        )
        let payload = invocation.handlerPayload
        let handler = self.handler
        do {
            return .success(
                try await InvocationDeadline.$current.withValue(request.deadline) {
                    try await withDeadline(request.deadline) { try await handler.handle(payload, context) }
                }
            )
        } catch is DeadlineExceeded {
            // The handler's task is cancelled and abandoned; the next invocation gets a new environment.
            // A store write it started commits or is abandoned before the caller hears of the timeout.
            await stores.settle()
            return .timedOut(invocation.requestID, after: function.configuration.timeout)
        } catch {
            return .handlerError(Dispatcher.encode(ErrorObject(error)))
        }
    }

    var peakMemoryMB: Int { ResourceUsage.peakMemoryMB() }

    var isAlive: Bool { true }

    func shutdown() async {}
}

extension ErrorObject {
    /// The init phase ran past Lambda's 10 s limit.
    static let initTimedOut = ErrorObject(
        errorType: "Sandbox.Timedout",
        errorMessage: "Error: the init phase did not finish within 10.00 seconds"
    )
}
