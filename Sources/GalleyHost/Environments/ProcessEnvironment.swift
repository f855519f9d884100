import CGalleySystem
import Galley
import NIOCore
import ServiceContextModule
import Synchronization

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

/// `"isolation": "process"`: a worker process that talks the Lambda Runtime API to the host:
/// `galley worker` (Swift handlers) over a private socket pair it inherits, any `command` over
/// HTTP on a loopback port of its own.
///
/// A crash, a spin, a block or an allocation past `memory` ends only this process: the caller gets
/// `Runtime.ExitError`, `Sandbox.Timedout` or `Runtime.OutOfMemory`, and the next invocation a
/// fresh environment.
final class ProcessEnvironment: ExecutionEnvironment {
    /// What wakes an invocation or the init phase up.
    private enum Signal: Sendable {
        case runtime(RuntimeEndpoint.Event)
        case exited(ChildProcess.Termination)
        case deadline

        var isExit: Bool {
            if case .exited = self { return true }
            return false
        }
    }

    /// How the host reaches the runtime inside the worker.
    private enum Link: Sendable {
        case channel(WorkerChannel)
        case http(RuntimeAPIServer, RuntimeEndpoint)

        func deliver(_ delivery: RuntimeEndpoint.Delivery) {
            switch self {
            case .channel(let channel): channel.deliver(delivery)
            case .http(_, let endpoint): endpoint.deliver(delivery)
            }
        }

        func stop() {
            switch self {
            case .channel(let channel): channel.stop()
            case .http(let server, _): server.stop()
            }
        }
    }

    private let child: ChildProcess
    private let link: Link
    /// The deadline the worker's store calls are bounded by.
    private let phase: PhaseDeadline
    private let stores: any StoreProvider
    private let cage: MemoryCage?
    private let output: OutputPump
    private let waiter: Mailbox<Signal>
    private let lastPeak = Atomic<Int>(0)
    /// When the peak was last read, in milliseconds since start: at most every 100 ms on the warm
    /// path (two small file reads per invocation otherwise), always after a fault.
    private let peakReadAt = Atomic<Int64>(-1000)

    /// The grace a timed-out or retired worker gets between SIGTERM and SIGKILL.
    static let killGrace: Duration = .milliseconds(100)

    private init(
        child: ChildProcess,
        link: Link,
        cage: MemoryCage?,
        output: OutputPump,
        waiter: Mailbox<Signal>,
        phase: PhaseDeadline,
        stores: any StoreProvider
    ) {
        self.child = child
        self.link = link
        self.phase = phase
        self.stores = stores
        self.cage = cage
        self.output = output
        self.waiter = waiter
    }

    /// Starts the worker and waits for its first `/next` (the end of its init phase).
    static func start(
        _ function: Deployment.Function,
        launch: WorkerLaunch,
        stores: any StoreProvider,
        writer: LogWriter,
        events: InvocationEvents? = nil,
        group: any EventLoopGroup,
        deadline: ContinuousClock.Instant
    ) async throws(EnvironmentFailure) -> ProcessEnvironment {
        // Signals go to whoever waits now; one that arrives while nobody waits is kept for the next.
        let waiter = Mailbox<Signal>()
        let send: @Sendable (Signal) -> Void = { signal in waiter.current.resolve(signal) }
        var variables = launch.environment
        // A worker that breaks the channel's framing is killed; its exit then reports the fault.
        let started = Mutex<ChildProcess?>(nil)
        let caged = Mutex<MemoryCage?>(nil)
        // The worker's store calls run against the function's grants, bounded by the deadline of
        // the phase it is in (init, then each invocation).
        let phase = PhaseDeadline(deadline)
        let functionName = function.name
        let storeCall: @Sendable ([UInt8]) async -> [UInt8] = { call in
            // In the trace of the invocation (or init) that made the call.
            await ServiceContext.$current.withValue(phase.context) {
                await InvocationDeadline.$current.withValue(phase.current) {
                    await StoreCall.answer(call, function: functionName, stores: stores)
                }
            }
        }
        let link: Link
        var childEnd: Int32?
        do {
            if launch.usesChannel {
                var pair: [Int32] = [0, 0]
                guard galley_socketpair_cloexec(&pair) == 0 else {
                    throw ChannelError("socketpair: \(String(cString: strerror(errno)))")
                }
                childEnd = pair[1]
                link = .channel(
                    try await WorkerChannel.start(
                        descriptor: pair[0],
                        onEvent: { send(.runtime($0)) },
                        onStoreCall: storeCall,
                        onBroken: { _ in started.withLock { $0?.kill(SIGKILL) } },
                        group: group
                    )
                )
                variables[WorkerLaunch.channelVariable] = String(ChildProcess.channelDescriptor)
            } else {
                let endpoint = RuntimeEndpoint(onEvent: { send(.runtime($0)) }, onStoreCall: storeCall)
                endpoint.admit { inode in
                    // The runtime may connect the moment it starts: give the spawn a moment to be noted.
                    var child = started.withLock { $0 }
                    for _ in 0..<50 where child == nil {
                        usleep(1000)
                        child = started.withLock { $0 }
                    }
                    guard let child else { return false }
                    let members = caged.withLock { $0 }?.members ?? LoopbackPeer.family(of: child.pid)
                    return LoopbackPeer.isHeld(inode, byAnyOf: members)
                }
                let server = try await RuntimeAPIServer.start(for: endpoint, group: group)
                link = .http(server, endpoint)
                variables["AWS_LAMBDA_RUNTIME_API"] = server.address
            }
        } catch {
            if let childEnd { close(childEnd) }
            throw EnvironmentFailure(object: ErrorObject(errorType: "Runtime.Unknown", errorMessage: "\(error)"))
        }
        let child: ChildProcess
        do {
            // The child's end of the channel is the child's alone from here: ChildProcess closes ours.
            child = try ChildProcess(
                arguments: launch.arguments,
                environment: variables,
                directory: launch.directory,
                channel: childEnd,
                sandbox: launch.sandbox
            )
        } catch {
            link.stop()
            throw EnvironmentFailure(
                object: ErrorObject(errorType: "Runtime.InvalidEntrypoint", errorMessage: "\(error)")
            )
        }
        started.withLock { $0 = child }
        let cage = MemoryLimiter.shared.limit(child.pid, megabytes: function.configuration.memory)
        caged.withLock { $0 = cage }
        let output = OutputPump(descriptor: child.output, writer: writer, function: function.name, events: events)
        output.start()
        child.onExit { send(.exited($0)) }
        let environment = ProcessEnvironment(
            child: child,
            link: link,
            cage: cage,
            output: output,
            waiter: waiter,
            phase: phase,
            stores: stores
        )
        switch await environment.wait(until: deadline) {
        case .runtime(.ready):
            return environment
        case .runtime(.initError(let body, let type)):
            await environment.shutdown()
            let object =
                (try? JSONDecoder().decode(ErrorObject.self, from: body))
                ?? ErrorObject(
                    errorType: type ?? "Runtime.Unknown",
                    errorMessage: String(decoding: body, as: UTF8.self)
                )
            throw EnvironmentFailure(object: object, body: body.isEmpty ? Data?.none : body)
        case .exited(let termination):
            await environment.shutdown()
            throw EnvironmentFailure(object: environment.exitError(termination, requestID: nil))
        case .deadline:
            await environment.shutdown()
            throw EnvironmentFailure(object: .initTimedOut)
        case .runtime:
            await environment.shutdown()
            throw EnvironmentFailure(
                object: ErrorObject(
                    errorType: "Runtime.Unknown",
                    errorMessage: "the runtime answered before its first /next"
                )
            )
        }
    }

    /// Waits for the next signal or `deadline`, whichever comes first.
    private func wait(until deadline: ContinuousClock.Instant) async -> Signal {
        let once = waiter.current
        let ticket = Watchdog.shared.schedule(at: deadline) { once.resolve(.deadline) }
        let signal = await withCheckedContinuation { continuation in
            once.onResolve { continuation.resume(returning: $0) }
        }
        ticket.cancel()
        // A process that exited stays exited for every later wait.
        if !signal.isExit { waiter.renew() }
        return signal
    }

    func invoke(_ request: EnvironmentRequest) async -> EnvironmentOutcome {
        let invocation = request.invocation
        let function = request.function
        output.sink = request.log
        defer { output.sink = nil }
        phase.current = request.deadline
        phase.context = ServiceContext.current
        link.deliver(
            RuntimeEndpoint.Delivery(
                requestID: invocation.requestID,
                payload: invocation.json,
                deadlineMs: Timestamp.epochMilliseconds(at: request.deadline),
                functionARN: ARN.function(function.name, qualifier: invocation.qualifier),
                traceID: TraceHeader.xray(invocation.traceHeaders) ?? Self.traceID(),
                clientContext: invocation.clientContext
            )
        )
        let signal = await wait(until: request.deadline)
        notePeakMemory(force: signal.isExit)
        switch signal {
        case .runtime(.response(let payload)):
            output.drain()
            return .success(payload)
        case .runtime(.error(let body, let type)):
            output.drain()
            if body.isEmpty {
                return .handlerError(
                    Dispatcher.encode(ErrorObject(errorType: type ?? "Runtime.Unknown", errorMessage: ""))
                )
            }
            return .handlerError(body)
        case .exited(let termination):
            output.finish()
            await stores.settle()
            return .fault(exitError(termination, requestID: invocation.requestID))
        case .deadline:
            let starved = cage?.isOutOfMemory ?? false
            await stop()
            // A store call the host began for it commits or is abandoned before the caller hears.
            await stores.settle()
            if starved {
                return .fault(
                    ErrorObject(
                        errorType: "Runtime.OutOfMemory",
                        errorMessage:
                            "RequestId: \(invocation.requestID) Error: Runtime exited with error: signal: killed"
                    )
                )
            }
            return .timedOut(invocation.requestID, after: function.configuration.timeout)
        case .runtime(.ready), .runtime(.initError):
            await stop()
            return .fault(
                ErrorObject(
                    errorType: "Runtime.Unknown",
                    errorMessage: "RequestId: \(invocation.requestID) Error: the runtime broke the Runtime API protocol"
                )
            )
        }
    }

    /// `Runtime.OutOfMemory` when the kernel killed it for memory, else `Runtime.ExitError`.
    private func exitError(_ termination: ChildProcess.Termination, requestID: String?) -> ErrorObject {
        let prefix = requestID.map { "RequestId: \($0) " } ?? ""
        let message = "\(prefix)Error: Runtime exited with error: \(termination)"
        if let cage, cage.oomKills > 0 {
            return ErrorObject(errorType: "Runtime.OutOfMemory", errorMessage: message)
        }
        return ErrorObject(errorType: "Runtime.ExitError", errorMessage: message)
    }

    private func notePeakMemory(force: Bool) {
        let now = Milliseconds.whole(ContinuousClock.now - Self.origin)
        guard force || now - peakReadAt.load(ordering: .relaxed) >= 100 else { return }
        peakReadAt.store(now, ordering: .relaxed)
        // The cgroup's peak counts every page of the environment (the worker's among them) and is
        // one number to read; the worker's own high-water mark is for hosts without one (its
        // /proc status file is 2.5% of a busy host's CPU at 32 workers).
        let peak = cage?.peakMemoryMB ?? child.peakMemoryMB ?? 0
        if peak > 0 { lastPeak.store(peak, ordering: .relaxed) }
    }

    var peakMemoryMB: Int { lastPeak.load(ordering: .relaxed) }

    var isAlive: Bool { child.exited == nil }

    /// SIGTERM, then SIGKILL after ``killGrace``, and wait for the process to be collected; then
    /// every other process of the environment is killed.
    private func stop() async {
        if child.exited == nil {
            child.kill(SIGTERM)
            let child = self.child
            let ticket = Watchdog.shared.schedule(at: .now + Self.killGrace) { child.kill(SIGKILL) }
            _ = await child.waitForExit()
            ticket.cancel()
        }
        // Whatever the worker started, however detached, ends with its environment.
        cage?.killAll()
        output.finish()
    }

    func shutdown() async {
        await stop()
        link.stop()
        cage?.remove()
    }

    private static let origin = ContinuousClock.now

    /// An X-Ray trace header: `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0`, its
    /// random parts taken from a request id (no system call per invocation).
    static func traceID() -> String {
        RequestIDs.traceHeader(epochSeconds: UInt64(Timestamp.epochMilliseconds() / 1000))
    }
}

/// The signal an environment waits for next: the first one sent wins, and one sent while nobody
/// waits is kept for the next wait.
final class Mailbox<Value: Sendable>: Sendable {
    private let slot = Mutex(Once<Value>())

    var current: Once<Value> { slot.withLock { $0 } }

    /// Starts a new wait.
    func renew() {
        slot.withLock { $0 = Once() }
    }
}

/// The deadline of the phase an environment is in: its init phase, then each invocation.
final class PhaseDeadline: Sendable {
    private let value: Mutex<(deadline: ContinuousClock.Instant, context: ServiceContext?)>

    /// Starts with the init phase, in the current service context (its span).
    init(_ deadline: ContinuousClock.Instant) {
        value = Mutex((deadline, ServiceContext.current))
    }

    var current: ContinuousClock.Instant {
        get { value.withLock { $0.deadline } }
        set { value.withLock { $0.deadline = newValue } }
    }

    /// The phase's trace context, for the spans of the store calls made in it.
    var context: ServiceContext? {
        get { value.withLock { $0.context } }
        set { value.withLock { $0.context = newValue } }
    }
}
