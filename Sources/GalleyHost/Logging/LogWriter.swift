import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#elseif canImport(Musl)
    private let systemWrite = Musl.write
#else
    private let systemWrite = Darwin.write
#endif

/// Where invocation logs go: `START`/`END`/`REPORT` blocks and the handlers' own lines, one
/// line at a time, as text (Lambda's classic format) or as JSON objects (Lambda's JSON format).
public final class LogWriter: Sendable {
    /// How lines are written.
    public struct Format: Hashable, Sendable {
        let name: String
        /// `START RequestId: …` and tab-separated application lines, as CloudWatch shows them.
        public static let text = Format(name: "text")
        /// One JSON object per line with the same fields (`platform.start`, `platform.report`, …).
        public static let json = Format(name: "json")

        public init?(_ name: String) {
            guard name == "text" || name == "json" else { return nil }
            self.name = name
        }

        private init(name: String) { self.name = name }
    }

    public let format: Format
    private let output: @Sendable ([String]) -> Void

    /// Calls `output` once per line, without the newline.
    public init(format: Format = .text, output: @escaping @Sendable (String) -> Void) {
        self.format = format
        self.output = { lines in lines.forEach(output) }
    }

    private init(format: Format, batches: @escaping @Sendable ([String]) -> Void) {
        self.format = format
        self.output = batches
    }

    /// Writes to the process's standard error, one `write(2)` per batch of lines, under a lock, so
    /// lines of concurrent invocations never interleave.
    public static func standardError(format: Format = .text) -> LogWriter {
        let lock = Mutex(())
        return LogWriter(format: format) { (lines: [String]) in
            // The block's bytes, each line ended: written as they are, with no string made of them.
            var block: [UInt8] = []
            block.reserveCapacity(lines.reduce(lines.count) { $0 + $1.utf8.count })
            for line in lines {
                block.append(contentsOf: line.utf8)
                block.append(UInt8(ascii: "\n"))
            }
            lock.withLock { _ in
                block.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = systemWrite(2, buffer.baseAddress! + offset, buffer.count - offset)
                        if written <= 0 { return }
                        offset += written
                    }
                }
            }
        }
    }

    /// A writer that drops everything.
    public static let discarding = LogWriter { _ in }

    func write(_ line: String) {
        output([line])
    }

    /// Writes several lines at once: one system call on stderr.
    func write(lines: [String]) {
        output(lines)
    }
}

package enum Milliseconds {
    static func of(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// Whole milliseconds in `duration`, rounded toward zero.
    package static func whole(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    /// `1234.5` → `"1234.50"`, without Foundation's formatters.
    static func twoDecimals(_ value: Double) -> String {
        var text: [UInt8] = []
        appendTwoDecimals(value, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// ``twoDecimals(_:)`` appended to `text`, with no string made for it: a REPORT line is written
    /// for every invocation.
    static func appendTwoDecimals(_ value: Double, to text: inout [UInt8]) {
        let hundredths = Int((value * 100).rounded())
        if hundredths < 0 { text.append(UInt8(ascii: "-")) }
        let magnitude = abs(hundredths)
        text.append(contentsOf: String(magnitude / 100).utf8)
        let fraction = magnitude % 100
        text.append(contentsOf: (fraction < 10 ? ".0" : ".").utf8)
        text.append(contentsOf: String(fraction).utf8)
    }
}

enum Timestamp {
    /// Unix epoch milliseconds now, as the Runtime API's `Lambda-Runtime-Deadline-Ms` counts.
    static func epochMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// Unix epoch milliseconds at `instant` of the monotonic clock.
    static func epochMilliseconds(at instant: ContinuousClock.Instant) -> Int64 {
        epochMilliseconds() + Milliseconds.whole(instant - .now)
    }

    /// The current time as ISO 8601 with milliseconds, e.g. `2026-11-21T04:03:34.123Z`.
    static func now() -> String {
        if let fixed = Self.fixed { return fixed }
        return iso8601(epochMilliseconds: epochMilliseconds())
    }

    /// What `now()` answers instead of the time, while set: a placeholder in lines prepared ahead
    /// (a one-shot invocation's fault report).
    @TaskLocal static var fixed: String?

    /// Unix epoch milliseconds as ISO 8601 with milliseconds, e.g. `2026-11-21T04:03:34.123Z`.
    static func iso8601(epochMilliseconds milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let fraction = Int32(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + ".\(pad(fraction, 3))Z"
    }
}

enum ResourceUsage {
    private static let cache = Mutex<(read: ContinuousClock.Instant, megabytes: Int)?>(nil)

    /// The process's peak resident set size in MB, rounded up; read again at most every 50 ms
    /// (`getrusage` sums over every thread, which costs on a busy host).
    static func peakMemoryMB() -> Int {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0 }), now - cached.read < .milliseconds(50) { return cached.megabytes }
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        let megabytes = (Int(usage.ru_maxrss) + 1023) / 1024  // ru_maxrss is in KB on Linux
        cache.withLock { $0 = (now, megabytes) }
        return megabytes
    }
}
