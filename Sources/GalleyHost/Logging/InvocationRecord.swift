import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One invocation's record: `START`, the handler's lines, `END`, the timeout line and `REPORT`,
/// written as one block, and the result the caller gets (with the log tail when asked for).
final class InvocationRecord: Sendable {
    let log: InvocationLog
    private let requestID: String
    private let configuration: FunctionConfiguration
    private let format: LogWriter.Format
    private let started = ContinuousClock.now
    private let initDuration = Mutex<Duration?>(nil)

    private let function: String
    private let events: InvocationEvents?

    init(invocation: Invocation, function: Deployment.Function, writer: LogWriter, events: InvocationEvents? = nil) {
        requestID = invocation.requestID
        configuration = function.configuration
        format = writer.format
        self.function = function.name
        self.events = events
        // Only live feeds take starts: no observer needs one.
        if let events, events.hasSubscribers {
            events.publish(.start(function: function.name, requestID: invocation.requestID))
        }
        log = InvocationLog(
            writer: writer,
            requestID: invocation.requestID,
            capture: invocation.wantsLogTail,
            function: function.name,
            events: events
        )
        log.append(Report.start(requestID, format: format), flush: false)
    }

    /// Marks the end of a cold start's init phase: `Init Duration` in REPORT.
    func initFinished() {
        let elapsed = ContinuousClock.now - started
        initDuration.withLock { $0 = elapsed }
    }

    /// Writes `END`, the timeout line and `REPORT`, and returns what the caller gets.
    func finish(_ outcome: EnvironmentOutcome, peakMemoryMB: Int) -> InvocationResult {
        let initDuration = self.initDuration.withLock { $0 }
        let report = Report(
            requestID: requestID,
            duration: ContinuousClock.now - started - (initDuration ?? .zero),
            memorySize: configuration.memory,
            maxMemoryUsed: peakMemoryMB,
            initDuration: initDuration,
            status: outcome.status,
            errorType: outcome.status == "error" ? outcome.errorType : nil
        )
        Self.close(outcome, report: report, timeout: configuration.timeout, in: log)
        if let events, events.isObserved {
            let errorType = outcome.isFunctionError ? (outcome.errorType ?? ReportedError(outcome.payload)?.type) : nil
            events.publish(
                .end(
                    InvocationEvent.Summary(
                        function: function,
                        requestID: requestID,
                        durationMs: Milliseconds.of(report.duration),
                        billedMs: report.billedMilliseconds,
                        initDurationMs: report.initDuration.map(Milliseconds.of),
                        memorySizeMB: report.memorySize,
                        maxMemoryUsedMB: report.maxMemoryUsed,
                        status: outcome.status ?? (outcome.isFunctionError ? "error" : "success"),
                        errorType: outcome.isTimeout ? "Sandbox.Timedout" : errorType,
                        time: Timestamp.epochMilliseconds()
                    )
                )
            )
        }
        var result = InvocationResult(
            requestID: requestID,
            payload: outcome.payload,
            isFunctionError: outcome.isFunctionError
        )
        if let tail = log.tail { result.logTail = Data(tail).base64EncodedString() }
        return result
    }

    /// The init phase's length so far, once it has finished.
    var initPhase: Duration? { initDuration.withLock { $0 } }

    /// Appends what ends an invocation with `outcome` to `log`: a function error's line (every
    /// function error is in the log once, whoever called), `END`, the timeout line, `REPORT`.
    static func close(_ outcome: EnvironmentOutcome, report: Report, timeout: Double, in log: InvocationLog) {
        let format = log.writer.format
        if outcome.isFunctionError, !outcome.isTimeout {
            let error = ReportedError(outcome.payload)
            let text =
                error.map { "\($0.type ?? "Error"): \($0.message ?? "")" }
                ?? String(decoding: outcome.payload, as: UTF8.self)
            InvocationLogHandler.logger(for: log, label: "galley", level: .error)
                .error("Invoke Error \(text.split(whereSeparator: \.isNewline).joined(separator: " "))")
        }
        log.append(Report.end(report.requestID, format: format), flush: false)
        if outcome.isTimeout {
            log.append(Report.timedOut(report.requestID, after: timeout, format: format), flush: false)
        }
        log.append(report.line(format: format))
    }
}

/// The log of one invocation: writes through the ``LogWriter`` and keeps the last 4 KB when the
/// caller asked for `X-Amz-Log-Type: Tail`.
///
/// Lines are held until the handler logs or the invocation ends, then written in one call: a quiet
/// invocation costs one write, and the order of lines is the order they were made. At most
/// ``holdLimit`` bytes are ever held: past that they are written at once, so that a function
/// printing hundreds of megabytes costs the host no more memory than a quiet one.
final class InvocationLog: Sendable {
    static let tailLimit = 4096
    static let holdLimit = 64 * 1024

    let writer: LogWriter
    let requestID: String?
    private struct State {
        var pending: [String] = []
        var pendingBytes = 0
        var captured: [UInt8]?

        init(captured: [UInt8]?) {
            // Room for the three lines of a quiet invocation (START, END, REPORT): no growing.
            pending.reserveCapacity(3)
            self.captured = captured
        }
    }
    private let state: Mutex<State>
    /// Whether every line is written as it comes, none held.
    private let writesThrough = Atomic<Bool>(false)

    /// The function whose log this is, for the event stream.
    private let function: String?
    private let events: InvocationEvents?

    init(
        writer: LogWriter,
        requestID: String?,
        capture: Bool,
        function: String? = nil,
        events: InvocationEvents? = nil
    ) {
        self.writer = writer
        self.requestID = requestID
        self.state = Mutex(State(captured: capture ? [] : nil))
        self.function = function
        self.events = events
    }

    /// Adds a line; `flush` writes it (and anything held) now.
    func append(_ line: String, flush: Bool = true) {
        if let events, let function, events.hasSubscribers {
            events.publish(
                .line(
                    InvocationEvent.Line(
                        function: function,
                        requestID: requestID,
                        text: line,
                        time: Timestamp.epochMilliseconds()
                    )
                )
            )
        }
        let lines: [String] = state.withLock { state in
            if state.captured != nil {
                state.captured!.append(contentsOf: line.utf8)
                state.captured!.append(UInt8(ascii: "\n"))
                if state.captured!.count > 2 * Self.tailLimit {
                    state.captured!.removeFirst(state.captured!.count - Self.tailLimit)
                }
            }
            state.pending.append(line)
            state.pendingBytes += line.utf8.count + 1
            guard flush || state.pendingBytes > Self.holdLimit || writesThrough.load(ordering: .relaxed) else {
                return []
            }
            defer {
                // Not emptied in place: the lines returned still hold that storage.
                state.pending = []
                state.pendingBytes = 0
            }
            return state.pending
        }
        if !lines.isEmpty { write(lines) }
    }

    /// Writes `lines` to the log, and hands them to the event stream's observers in one batch.
    private func write(_ lines: [String]) {
        writer.write(lines: lines)
        guard let events, let function, events.hasObservers else { return }
        events.publish(
            .lines(
                InvocationEvent.Batch(
                    function: function,
                    requestID: requestID,
                    texts: lines,
                    time: Timestamp.epochMilliseconds()
                )
            )
        )
    }

    /// Writes what is held, and from now on every line as it comes: for an invocation whose process
    /// may end at any moment (a one-shot `galley invoke`), so that no line is lost with it.
    func writeThrough() {
        writesThrough.store(true, ordering: .relaxed)
        let lines: [String] = state.withLock { state in
            defer {
                state.pending.removeAll()
                state.pendingBytes = 0
            }
            return state.pending
        }
        if !lines.isEmpty { write(lines) }
    }

    /// The last 4 KB of what was written, or `nil` when capture was off.
    var tail: [UInt8]? {
        state.withLock { state in state.captured.map { Array($0.suffix(Self.tailLimit)) } }
    }
}

/// The platform lines around each invocation.
struct Report {
    /// `pieces` as one string, made once: `+` makes a string for each.
    private static func concatenated(_ pieces: String...) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pieces.reduce(0) { $0 + $1.utf8.count })
        for piece in pieces { bytes.append(contentsOf: piece.utf8) }
        return String(decoding: bytes, as: UTF8.self)
    }

    var requestID: String
    var duration: Duration
    var memorySize: Int
    var maxMemoryUsed: Int
    var initDuration: Duration?
    var status: String?
    /// After `Status: error`, as Lambda writes it: `Runtime.OutOfMemory`, `Runtime.ExitError`.
    var errorType: String?

    static func start(_ requestID: String, format: LogWriter.Format) -> String {
        switch format {
        case .json:
            #"{"time":"\#(Timestamp.now())","type":"platform.start","record":{"requestId":"\#(requestID)","version":"$LATEST"}}"#
        default:
            concatenated("START RequestId: ", requestID, " Version: $LATEST")
        }
    }

    static func end(_ requestID: String, format: LogWriter.Format) -> String {
        switch format {
        case .json:
            #"{"time":"\#(Timestamp.now())","type":"platform.end","record":{"requestId":"\#(requestID)"}}"#
        default:
            concatenated("END RequestId: ", requestID)
        }
    }

    static func timedOut(_ requestID: String, after timeout: Double, format: LogWriter.Format) -> String {
        let text = "Task timed out after \(Milliseconds.twoDecimals(timeout)) seconds"
        switch format {
        case .json:
            return
                #"{"timestamp":"\#(Timestamp.now())","level":"ERROR","requestId":"\#(requestID)","message":"\#(text)"}"#
        default:
            return "\(Timestamp.now()) \(requestID) \(text)"
        }
    }

    var billedMilliseconds: Int {
        max(1, Int(Milliseconds.of(duration).rounded(.up)))
    }

    func line(format: LogWriter.Format) -> String {
        switch format {
        case .json:
            let duration = Milliseconds.twoDecimals(Milliseconds.of(self.duration))
            var metrics =
                #""durationMs":\#(duration),"billedDurationMs":\#(billedMilliseconds),"#
                + #""memorySizeMB":\#(memorySize),"maxMemoryUsedMB":\#(maxMemoryUsed)"#
            if let initDuration {
                metrics += #","initDurationMs":\#(Milliseconds.twoDecimals(Milliseconds.of(initDuration)))"#
            }
            let errorField = errorType.map { #","errorType":\#(JSONString.quote($0))"# } ?? ""
            return #"{"time":"\#(Timestamp.now())","type":"platform.report","record":{"requestId":"\#(requestID)","#
                + #""metrics":{\#(metrics)},"status":"\#(status ?? "success")"\#(errorField)}}"#
        default:
            // Written as bytes, piece by piece, and made a string once: interpolation, or appending
            // to a string, costs several times more, on every invocation.
            var line: [UInt8] = []
            line.reserveCapacity(192)
            line.append(contentsOf: "REPORT RequestId: ".utf8)
            line.append(contentsOf: requestID.utf8)
            line.append(contentsOf: "\tDuration: ".utf8)
            Milliseconds.appendTwoDecimals(Milliseconds.of(self.duration), to: &line)
            line.append(contentsOf: " ms\tBilled Duration: ".utf8)
            line.append(contentsOf: String(billedMilliseconds).utf8)
            line.append(contentsOf: " ms\tMemory Size: ".utf8)
            line.append(contentsOf: String(memorySize).utf8)
            line.append(contentsOf: " MB\tMax Memory Used: ".utf8)
            line.append(contentsOf: String(maxMemoryUsed).utf8)
            line.append(contentsOf: " MB\t".utf8)
            if let initDuration {
                line.append(contentsOf: "Init Duration: ".utf8)
                Milliseconds.appendTwoDecimals(Milliseconds.of(initDuration), to: &line)
                line.append(contentsOf: " ms\t".utf8)
            }
            if let status {
                line.append(contentsOf: "Status: ".utf8)
                line.append(contentsOf: status.utf8)
                line.append(UInt8(ascii: "\t"))
            }
            if let errorType {
                line.append(contentsOf: "Error Type: ".utf8)
                line.append(contentsOf: errorType.utf8)
                line.append(UInt8(ascii: "\t"))
            }
            return String(decoding: line, as: UTF8.self)
        }
    }
}

/// The `errorType` and `errorMessage` of the error object a function answered with, as far as
/// it has them (runtimes in other languages may leave fields out); `nil` when it is not one.
struct ReportedError: Decodable {
    let type: String?
    let message: String?

    enum CodingKeys: String, CodingKey {
        case type = "errorType"
        case message = "errorMessage"
    }

    init?(_ payload: Data) {
        guard let error = try? JSONDecoder().decode(Self.self, from: payload), error.type != nil || error.message != nil
        else { return nil }
        self = error
    }
}
