import HTTPTypes
import Instrumentation
import ServiceContextModule
import Tracing

/// An invocation's trace: its X-Ray header for the function, and the caller's context for its span.
enum TraceHeader {
    /// The header names read from callers, lower-case.
    static let names = ["x-amzn-trace-id", "traceparent", "tracestate"]
    /// The same, as HTTP field names, made once.
    static let fields = names.map { HTTPField.Name($0)! }

    /// The X-Ray header the function gets: the caller's `X-Amzn-Trace-Id` when it is one (it has a
    /// `Root=1-…`), else one made from a W3C `traceparent`, else `nil` (the host makes a new one).
    static func xray(_ headers: [String: String]) -> String? {
        if let amzn = headers["x-amzn-trace-id"], amzn.count <= 256, amzn.contains("Root=1-"),
            amzn.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F })
        {
            return amzn
        }
        return headers["traceparent"].flatMap(fromTraceparent)
    }

    /// `00-<32 hex trace id>-<16 hex parent>-<2 hex flags>` as X-Ray writes the same trace:
    /// `Root=1-<first 8 hex>-<last 24 hex>;Parent=<16 hex>;Sampled=<flags & 1>`.
    static func fromTraceparent(_ value: String) -> String? {
        let parts = value.split(separator: "-")
        guard parts.count == 4, parts[0].count == 2, parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts.dropFirst().allSatisfy({ $0.allSatisfy(\.isHexDigit) }),
            let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        let trace = parts[1].lowercased()
        return "Root=1-\(trace.prefix(8))-\(trace.dropFirst(8));Parent=\(parts[2].lowercased());Sampled=\(flags & 1)"
    }
}

/// Reads the caller's trace headers for the tracer's `extract`.
struct TraceHeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key.lowercased()]
    }
}
