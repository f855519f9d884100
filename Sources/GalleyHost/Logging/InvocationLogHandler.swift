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

/// JSON string literals without an encoder.
enum JSONString {
    /// `text` as a quoted, escaped JSON string.
    static func quote(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            // Most strings need no escaping: copy them whole.
            guard bytes.contains(where: needsEscape) else {
                return String(unsafeUninitializedCapacity: bytes.count + 2) { buffer in
                    buffer[0] = UInt8(ascii: "\"")
                    _ = UnsafeMutableBufferPointer(rebasing: buffer[1...]).initialize(from: bytes)
                    buffer[bytes.count + 1] = UInt8(ascii: "\"")
                    return bytes.count + 2
                }
            }
            var result: [UInt8] = [UInt8(ascii: "\"")]
            result.reserveCapacity(bytes.count + 8)
            appendEscaped(bytes, to: &result)
            result.append(UInt8(ascii: "\""))
            return String(decoding: result, as: UTF8.self)
        }
    }

    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Appends the UTF-8 `bytes` of a string's content, escaped, without quotes.
    static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to result: inout [UInt8]) {
        guard bytes.contains(where: needsEscape) else {
            result.append(contentsOf: bytes)
            return
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): result += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): result += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): result += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): result += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): result += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                result += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")]
                result += [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: result.append(byte)
            }
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

/// A JSON document written straight into one byte buffer: no intermediate strings.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// JSON text as it is: punctuation, keys, literals.
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A quoted, escaped string.
    mutating func string(_ text: some StringProtocol) {
        bytes.append(UInt8(ascii: "\""))
        content(text)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Several strings as one quoted string, `separator` between them.
    mutating func string(joining parts: [String], separator: UInt8) {
        bytes.append(UInt8(ascii: "\""))
        for (index, part) in parts.enumerated() {
            if index > 0 { bytes.append(separator) }
            content(part)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// An integer.
    mutating func number(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    private mutating func content(_ text: some StringProtocol) {
        let written: Void? = text.utf8.withContiguousStorageIfAvailable {
            JSONString.appendEscaped($0, to: &bytes)
        }
        guard written == nil else { return }
        var copy = String(text)
        copy.withUTF8 { JSONString.appendEscaped($0, to: &bytes) }
    }
}
