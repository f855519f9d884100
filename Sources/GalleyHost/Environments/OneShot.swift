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
        let record = InvocationRecord(invocation: invocation, function: function, writer: logWriter, events: events)
        record.log.writeThrough()
        guardian.limitMemory()
        guardian.prepare()
        let initStart = ContinuousClock.now
        guardian.arm(initPhase: nil, started: initStart, deadline: initStart + EnvironmentLauncher.initTimeout)
        let environment: InlineEnvironment
        do throws(EnvironmentFailure) {
            environment = try await InlineEnvironment.start(
                function,
                entry: entry,
                stores: launcher.stores(function),
                writer: logWriter,
                events: events,
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
        static let initDuration = "\u{1}I"
        static let prefix = "\u{1}P"
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

    /// Installs the guard and prepares every fault's report, once; `arm` then costs next to nothing.
    func prepare() {
        galley_guard_install(resultDescriptor, 2)
        galley_guard_set(-1, "RequestId: \(requestID) ", nil)
        let exit = Placeholder.prefix + "Error: Runtime exited with error: "
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
            (GALLEY_FAULT_INIT_TIMEOUT, EnvironmentFailure(object: .initTimedOut).outcome),
            (GALLEY_FAULT_TIMEOUT, .timedOut(requestID, after: configuration.timeout)),
        ]
        for (fault, outcome) in faults {
            let (result, log) = render(outcome)
            galley_guard_set(Int32(fault.rawValue), result, log)
        }
    }

    /// Guards the init phase (`initPhase` nil) or the invocation after it, until `disarm`.
    func arm(initPhase: Duration?, started: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        let initNanoseconds = initPhase.map {
            $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000
        }
        galley_guard_arm(Self.nanoseconds(at: started), Self.nanoseconds(at: deadline), initNanoseconds ?? -1)
    }

    func disarm() {
        galley_guard_disarm()
    }

    /// The answer and the log lines of `outcome`, with placeholders for what only the fault knows.
    private func render(_ outcome: EnvironmentOutcome) -> (result: String, log: String) {
        let report = Report(
            requestID: requestID,
            duration: .milliseconds(7_777_777),
            memorySize: configuration.memory,
            maxMemoryUsed: 6_666_666,
            initDuration: .milliseconds(5_555_555),
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
            Self.replacing(
                text,
                [
                    ("\\u0001", "\u{1}"), ("7777777.00", Placeholder.duration), ("7777777", Placeholder.billed),
                    ("5555555.00", Placeholder.initDuration), ("6666666", Placeholder.memory),
                ]
            )
        }
        let logText = lines.withLock { $0.map { $0 + "\n" }.joined() }
        return (fill(String(decoding: outcome.payload, as: UTF8.self)) + "\n", fill(logText))
    }

    /// `text` with each pair's first string replaced by its second, the pairs tried in order at
    /// each position (a byte loop: the generic `replacing` costs more at start-up than it saves).
    static func replacing(_ text: String, _ pairs: [(String, String)]) -> String {
        let bytes = Array(text.utf8)
        let patterns = pairs.map { (Array($0.0.utf8), Array($0.1.utf8)) }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        scan: while index < bytes.count {
            for (pattern, replacement) in patterns
            where bytes.count - index >= pattern.count && bytes[index..<index + pattern.count].elementsEqual(pattern) {
                result += replacement
                index += pattern.count
                continue scan
            }
            result.append(bytes[index])
            index += 1
        }
        return String(decoding: result, as: UTF8.self)
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
