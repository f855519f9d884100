import Galley
import Logging

/// The `LogHandler` behind `context.logger`: each line goes to the invocation's log, tagged with
/// its request id, as Lambda's runtimes write them.
struct InvocationLogHandler: LogHandler {
    let log: InvocationLog
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let level = Self.levelName(event.level)
        switch log.writer.format {
        case .json:
            var line = #"{"timestamp":"\#(Timestamp.now())","level":"\#(level)""#
            if let requestID = log.requestID { line += #","requestId":"\#(requestID)""# }
            line += #","message":\#(JSONString.quote(event.message.description))"#
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                line += ",\(JSONString.quote(key)):\(JSONString.quote(value.description))"
            }
            log.append(line + "}")
        default:
            var line = Timestamp.now() + "\t"
            if let requestID = log.requestID { line += requestID + "\t" }
            line += level + "\t" + event.message.description
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                line += " \(key)=\(value)"
            }
            log.append(Self.indentingContinuations(line))
        }
    }

    /// One log record as one block: every line after the first is indented with a tab, so a
    /// message with newlines cannot pass for a `REPORT` line (or any line of another request) in
    /// stderr or the log tail. A carriage return counts as a line break, as in Lambda's runtimes.
    static func indentingContinuations(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        var previousWasReturn = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\r":
                result += "\n\t"
                previousWasReturn = true
                continue
            case "\n":
                if !previousWasReturn { result += "\n\t" }
            default:
                result.unicodeScalars.append(scalar)
            }
            previousWasReturn = false
        }
        return result
    }

    /// A logger whose lines go to `log`.
    static func logger(for log: InvocationLog, label: String, level: Logger.Level) -> Logger {
        Logger(label: label) { _ in InvocationLogHandler(log: log, logLevel: level) }
    }

    /// The level Lambda names `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` (any case).
    static func level(named name: String) -> Logger.Level? {
        switch name.uppercased() {
        case "TRACE": .trace
        case "DEBUG": .debug
        case "INFO": .info
        case "NOTICE": .notice
        case "WARN", "WARNING": .warning
        case "ERROR": .error
        case "FATAL", "CRITICAL": .critical
        default: nil
        }
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "FATAL"
        }
    }
}
