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
            log.append(line)
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

/// JSON string literals without an encoder.
enum JSONString {
    /// `text` as a quoted, escaped JSON string.
    static func quote(_ text: String) -> String {
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
