import CGalleySystem
import Galley
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

extension Dispatcher {
    /// `galley invoke FUNCTION` with one event: the command's own process is the function's
    /// execution environment, with no worker to start.
    ///
    /// Lambda's fault results are kept by other means than a process boundary: a trap, a bad access
    /// or an abort writes the prepared `Runtime.ExitError` (or `Runtime.OutOfMemory` when an
    /// allocation failed) with async-signal-safe calls and ends the process; `exit` from the handler
    /// does the same with its status; a watchdog thread writes `Sandbox.Timedout` at the deadline,
    /// however the handler spins; `memory` is the process's own `RLIMIT_DATA` (on top of what it
    /// holds already). The answer goes to `resultDescriptor`, and the handler's own stdout to
    /// stderr, where a worker's goes. `command` functions still run in a worker process.
    public func invokeInProcess(
        _ invocation: Invocation,
        resultDescriptor: Int32
    ) async throws(InvokeError) -> InvocationResult {
        let function = try resolve(invocation)
        guard let entry = function.entry, function.configuration.command == nil else {
            return try await invoke(invocation)
        }
        let guardian = FaultGuard(
            requestID: invocation.requestID,
            configuration: function.configuration,
            format: logWriter.format,
            resultDescriptor: resultDescriptor
        )
        let record = InvocationRecord(invocation: invocation, function: function, writer: logWriter)
        record.log.writeThrough()
        guardian.limitMemory()
        let initStart = ContinuousClock.now
        guardian.arm(initPhase: nil, started: initStart, deadline: initStart + EnvironmentLauncher.initTimeout)
        let environment: InlineEnvironment
        do throws(EnvironmentFailure) {
            environment = try await InlineEnvironment.start(
                function,
                entry: entry,
                stores: launcher.stores(function),
                writer: logWriter,
                logLevel: launcher.logLevel,
                deadline: initStart + EnvironmentLauncher.initTimeout
            )
            guardian.disarm()
            record.initFinished()
        } catch {
            guardian.disarm()
            record.initFinished()
            return record.finish(error.outcome, peakMemoryMB: ResourceUsage.peakMemoryMB())
        }
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(function.configuration.timeout * 1000))
        guardian.arm(initPhase: record.initPhase, started: start, deadline: deadline)
        var outcome = await environment.invoke(
            EnvironmentRequest(invocation: invocation, function: function, deadline: deadline, log: record.log)
        )
        guardian.disarm()
        if outcome.payload.count > Self.maxResponsePayload {
            outcome = .handlerError(Self.encode(Self.responseTooLarge))
        }
        return record.finish(outcome, peakMemoryMB: ResourceUsage.peakMemoryMB())
    }
}

/// The prepared fault reports of one in-process invocation, and the C guard that writes them.
struct FaultGuard {
    var requestID: String
    var configuration: FunctionConfiguration
    var format: LogWriter.Format
    var resultDescriptor: Int32

    /// Stand-ins the guard fills in when a fault happens (see `galley_guard_fault`).
    private enum Placeholder {
        static let duration = "\u{1}D"
        static let billed = "\u{1}B"
        static let memory = "\u{1}M"
        static let status = "\u{1}S"
        static let signal = "\u{1}N"
        static let time = "\u{1}T"
    }

    /// `memory` MB more than the process holds now may be allocated; past that, allocations fail.
    func limitMemory() {
        let held = Self.dataSegmentBytes()
        var limit = rlimit()
        let bytes = rlim_t(held + configuration.memory << 20)
        limit.rlim_cur = bytes
        limit.rlim_max = bytes
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
    }

    /// Prepares the reports of the init phase (`initPhase` nil) or of the invocation, and arms the guard.
    func arm(initPhase: Duration?, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        galley_guard_install(resultDescriptor, 2)
        let prefix = initPhase == nil ? "" : "RequestId: \(requestID) "
        let exit = "\(prefix)Error: Runtime exited with error: "
        let faults: [(galley_guard_fault, EnvironmentOutcome)] = [
            (
                GALLEY_FAULT_CRASH,
                .fault(
                    ErrorObject(errorType: "Runtime.ExitError", errorMessage: exit + "signal: " + Placeholder.signal)
                )
            ),
            (
                GALLEY_FAULT_OUT_OF_MEMORY,
                .fault(ErrorObject(errorType: "Runtime.OutOfMemory", errorMessage: exit + "signal: killed"))
            ),
            (
                GALLEY_FAULT_EXIT,
                .fault(
                    ErrorObject(
                        errorType: "Runtime.ExitError",
                        errorMessage: exit + "exit status " + Placeholder.status
                    )
                )
            ),
            (
                GALLEY_FAULT_TIMEOUT,
                initPhase == nil
                    ? EnvironmentFailure(object: .initTimedOut).outcome
                    : .timedOut(requestID, after: configuration.timeout)
            ),
        ]
        for (fault, outcome) in faults {
            let (result, log) = render(outcome, initPhase: initPhase)
            galley_guard_set(Int32(fault.rawValue), result, log)
        }
        galley_guard_arm(Self.nanoseconds(at: started), Self.nanoseconds(at: deadline))
    }

    func disarm() {
        galley_guard_disarm()
    }

    /// The answer and the log lines of `outcome`, with placeholders for what only the fault knows.
    private func render(_ outcome: EnvironmentOutcome, initPhase: Duration?) -> (result: String, log: String) {
        let sentinel = Duration.milliseconds(7_777_777)
        let report = Report(
            requestID: requestID,
            duration: initPhase == nil ? .zero : sentinel,
            memorySize: configuration.memory,
            maxMemoryUsed: 6_666_666,
            initDuration: initPhase ?? sentinel,
            status: outcome.status,
            errorType: outcome.status == "error" ? outcome.errorType : nil
        )
        let lines = Mutex<[String]>([])
        let log = InvocationLog(
            writer: LogWriter(format: format) { line in lines.withLock { $0.append(line) } },
            requestID: requestID,
            capture: false
        )
        Timestamp.$fixed.withValue(Placeholder.time) {
            InvocationRecord.close(outcome, report: report, timeout: configuration.timeout, in: log)
        }
        func fill(_ text: String) -> String {
            text.replacing("\\u0001", with: "\u{1}")
                .replacing("7777777.00", with: Placeholder.duration)
                .replacing("7777777", with: Placeholder.billed)
                .replacing("6666666", with: Placeholder.memory)
        }
        let logText = lines.withLock { $0.map { $0 + "\n" }.joined() }
        return (fill(String(decoding: outcome.payload, as: UTF8.self)) + "\n", fill(logText))
    }

    private static func nanoseconds(at instant: ContinuousClock.Instant) -> Int64 {
        let remaining = instant - .now
        let (seconds, attoseconds) = remaining.components
        return galley_monotonic_ns() + seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The process's data segment (`VmData`), which `RLIMIT_DATA` counts.
    private static func dataSegmentBytes() -> Int {
        guard let status = try? ProcFile.read("/proc/self/status") else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmData:") {
            return (Int(line.dropFirst(7).filter(\.isNumber)) ?? 0) * 1024
        }
        return 0
    }
}
