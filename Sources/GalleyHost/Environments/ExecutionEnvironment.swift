import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where a function's handler runs: one initialised instance serving one invocation at a time,
/// as a Lambda execution environment.
///
/// Environments are made by an ``EnvironmentLauncher`` (the init phase), owned by the function's
/// ``EnvironmentPool`` and shut down when they fail, time out, sit idle too long or their
/// function is redeployed.
protocol ExecutionEnvironment: AnyObject, Sendable {
    /// Runs one invocation until it answers, fails or reaches `request.deadline`.
    func invoke(_ request: EnvironmentRequest) async -> EnvironmentOutcome

    /// The environment's own peak memory in MB, for `Max Memory Used`.
    var peakMemoryMB: Int { get }

    /// Whether it can serve another invocation (a worker process that died while idle cannot).
    var isAlive: Bool { get }

    /// Stops the environment and frees what it holds; returns when it is gone.
    func shutdown() async
}

/// One invocation as an environment receives it.
struct EnvironmentRequest: Sendable {
    var invocation: Invocation
    var function: Deployment.Function
    var deadline: ContinuousClock.Instant
    /// Where the handler's log lines go.
    var log: InvocationLog
}

/// How an invocation ended inside its environment.
struct EnvironmentOutcome: Sendable {
    /// The result bytes, or the error object the caller gets.
    var payload: Data
    var isFunctionError: Bool
    /// `timeout` or `error` for the REPORT line; `nil` on success and for errors the handler reported.
    var status: String?
    /// The error type REPORT names after `Status: error` (`Runtime.OutOfMemory`, …).
    var errorType: String?
    /// Whether the environment may serve the next invocation.
    var keepsEnvironment: Bool

    static func success(_ payload: Data) -> EnvironmentOutcome {
        EnvironmentOutcome(payload: payload, isFunctionError: false, keepsEnvironment: true)
    }

    /// The handler reported an error; the environment stays warm.
    static func handlerError(_ payload: Data) -> EnvironmentOutcome {
        EnvironmentOutcome(payload: payload, isFunctionError: true, keepsEnvironment: true)
    }

    /// The environment is gone or unusable: crashed, out of memory, init failed.
    static func fault(_ object: ErrorObject, status: String = "error") -> EnvironmentOutcome {
        EnvironmentOutcome(
            payload: Dispatcher.encode(object),
            isFunctionError: true,
            status: status,
            errorType: object.errorType,
            keepsEnvironment: false
        )
    }

    /// The deadline passed: `Sandbox.Timedout`, and the environment is reset.
    static func timedOut(_ requestID: String, after seconds: Double) -> EnvironmentOutcome {
        var outcome = fault(
            ErrorObject(
                errorType: "Sandbox.Timedout",
                errorMessage:
                    "RequestId: \(requestID) Error: Task timed out after \(Milliseconds.twoDecimals(seconds)) seconds"
            ),
            status: "timeout"
        )
        outcome.errorType = nil
        return outcome
    }

    var isTimeout: Bool { status == "timeout" }
}

/// Why an environment could not be made: the error object its first invocation reports.
struct EnvironmentFailure: Error, Sendable {
    var object: ErrorObject
    /// The raw body a runtime posted to `/init/error`, passed to the caller unchanged.
    var body: Data?

    /// What the invocation that ran the init phase reports: the body as the runtime posted it.
    var outcome: EnvironmentOutcome {
        EnvironmentOutcome(
            payload: body ?? Dispatcher.encode(object),
            isFunctionError: true,
            status: "error",
            errorType: object.errorType,
            keepsEnvironment: false
        )
    }
}
