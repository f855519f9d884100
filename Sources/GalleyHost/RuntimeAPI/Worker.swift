import Galley
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `galley worker`: a Lambda runtime for the catalog's Swift handlers.
///
/// It reads only the Lambda environment (`AWS_LAMBDA_RUNTIME_API`, `_HANDLER`, …), so the same
/// binary serves Galley's worker processes and runs as a `provided.al2023` `bootstrap` on AWS
/// Lambda. Galley adds the function's store (`GALLEY_STORE_*`) when it starts one.
public struct Worker: Sendable {
    public let catalog: Catalog
    public let environment: [String: String]

    public init(catalog: Catalog, environment: [String: String]) {
        self.catalog = catalog
        self.environment = environment
    }

    /// Runs the init phase, then serves invocations until the Runtime API goes away; returns the
    /// process's exit status.
    public func run() async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        // A host killed outright cannot stop its workers, and a spinning handler never returns to
        // notice the Runtime API is gone: a thread ends the worker once its parent has changed.
        let parent = getppid()
        BlockingThread {
            while getppid() == parent { usleep(250_000) }
            _exit(0)
        }
        .start()
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        let writer = LogWriter.standardError(format: environment["AWS_LAMBDA_LOG_FORMAT"] == "JSON" ? .json : .text)
        func fail(_ message: String) -> Int32 {
            writer.write("galley worker: \(message)")
            return 2
        }
        let client: any RuntimeClient
        if let channel = environment[WorkerLaunch.channelVariable].flatMap({ Int32($0) }) {
            client = ChannelClient(descriptor: channel)
        } else if let address = environment["AWS_LAMBDA_RUNTIME_API"] {
            do {
                client = try RuntimeAPIClient(address: address)
            } catch {
                return fail(error.description)
            }
        } else {
            return fail("AWS_LAMBDA_RUNTIME_API is not set; this command runs inside Galley or AWS Lambda")
        }
        let functionName = environment["AWS_LAMBDA_FUNCTION_NAME"] ?? "function"
        let level = environment["AWS_LAMBDA_LOG_LEVEL"].flatMap(InvocationLogHandler.level(named:)) ?? .info
        let functionEnvironment = self.functionEnvironment
        let stores = self.stores(through: client)

        // Init phase.
        let handlerName = environment["_HANDLER"] ?? ""
        guard let entry = catalog[handlerName] else {
            let known = catalog.names.joined(separator: ", ")
            return initError(
                ErrorObject(
                    errorType: "Runtime.HandlerNotFound",
                    errorMessage: "no handler named '\(handlerName)' is registered; registered handlers: \(known)"
                ),
                client: client,
                writer: writer
            )
        }
        let handler: PreparedHandler
        do {
            handler = try await entry.prepare(
                context: InitContext(
                    functionName: functionName,
                    logger: InvocationLogHandler.logger(
                        for: InvocationLog(writer: writer, requestID: nil, capture: false),
                        label: functionName,
                        level: level
                    ),
                    environment: functionEnvironment,
                    stores: stores
                )
            )
        } catch {
            return initError(ErrorObject(error), client: client, writer: writer)
        }

        // Invocations, one at a time.
        while true {
            let next: NextInvocation
            do {
                next = try client.nextInvocation()
            } catch {
                // The host is gone: so is this environment. An answer that is not an invocation is a fault.
                guard error.description.hasPrefix("/next answered") else { return 0 }
                writer.write("galley worker: \(error)")
                return 1
            }
            let log = InvocationLog(writer: writer, requestID: next.requestID, capture: false)
            let context = Context(
                requestID: next.requestID,
                functionName: functionName,
                invokedFunctionARN: next.functionARN,
                deadline: ContinuousClock.now + .milliseconds(next.deadlineMs - Timestamp.epochMilliseconds()),
                clientContext: next.clientContext,
                traceID: next.traceID,
                logger: InvocationLogHandler.logger(for: log, label: functionName, level: level),
                environment: functionEnvironment,
                stores: stores
            )
            let outcome: Result<Data, any Error>
            do {
                outcome = .success(
                    try await InvocationDeadline.$current.withValue(context.deadline) {
                        try await handler.handle(.json(Data(next.payload)), context)
                    }
                )
            } catch {
                outcome = .failure(error)
            }
            do throws(ChannelError) {
                switch outcome {
                case .success(let result):
                    try client.respond(to: next.requestID, with: Array(result))
                case .failure(let error):
                    let object = ErrorObject(error)
                    try client.fail(next.requestID, type: object.errorType, object: Array(Dispatcher.encode(object)))
                }
            } catch {
                return 0
            }
        }
    }

    private func initError(_ object: ErrorObject, client: any RuntimeClient, writer: LogWriter) -> Int32 {
        writer.write("\(Timestamp.now())\tERROR\tinit failed: \(object.errorType): \(object.errorMessage)")
        client.initError(type: object.errorType, object: Array(Dispatcher.encode(object)))
        return 1
    }

    /// The function's own variables (the names Galley lists), or the whole environment on AWS Lambda.
    var functionEnvironment: [String: String] {
        guard let keys = environment[WorkerLaunch.environmentKeys] else { return environment }
        var own: [String: String] = [:]
        for key in keys.split(separator: ",") { own[String(key)] = environment[String(key)] }
        return own
    }

    /// The store, through the host over Galley's channel; none on AWS Lambda.
    func stores(through client: any RuntimeClient) -> any StoreProvider {
        guard let channel = client as? ChannelClient else { return NoStore() }
        return RemoteStores { call throws(ChannelError) in try channel.storeCall(call) }
    }
}
