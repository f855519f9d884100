import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One request to run a function: the value every path (CLI, Invoke API, routes) hands the ``Dispatcher``.
public struct Invocation: Sendable {
    /// How the caller waits, as `X-Amz-Invocation-Type`.
    public struct Kind: Hashable, Sendable {
        let name: String
        /// Wait for the result (the default).
        public static let requestResponse = Kind(name: "RequestResponse")
        /// Queue it and return at once.
        public static let event = Kind(name: "Event")
        /// Check the request and run nothing.
        public static let dryRun = Kind(name: "DryRun")
    }

    /// The deployed function's name.
    public var function: String
    /// The version or alias the caller named, if any.
    public var qualifier: String?
    /// The event JSON.
    public var payload: Data
    public var requestID: String
    public var kind: Kind
    /// The decoded `X-Amz-Client-Context` JSON.
    public var clientContext: String?
    /// Whether the result should carry the last 4 KB of the invocation's log.
    public var wantsLogTail: Bool
    /// An HTTP API event built by a route, whose request body was held to 6 MB before it was
    /// wrapped: Lambda limits the body, not the event around it. The host wrote it, so it is not
    /// checked as JSON again (the event builder has its own fuzz test).
    var isRouteEvent = false
    /// A route's event as values, for a function that runs in the host's process: its handler
    /// decodes them without JSON text between the two. ``payload`` is then empty.
    var event: EventValue?

    /// The event as JSON text: the payload, or the event's values written out (`{}` for none).
    var json: Data {
        if let event { return Data(event.json()) }
        return payload.isEmpty ? Data("{}".utf8) : payload
    }

    /// The event as a handler in the host's process takes it: its values when there are some.
    var handlerPayload: HandlerPayload {
        event.map { .values($0) } ?? .json(json)
    }

    /// The caller's trace headers (`X-Amzn-Trace-Id`, `traceparent`, `tracestate`), by lower-case name:
    /// the invocation's span is their child, and the function gets them as its X-Ray trace header.
    public var traceHeaders: [String: String] = [:]

    public init(
        function: String,
        qualifier: String? = nil,
        payload: Data,
        requestID: String = Invocation.makeRequestID(),
        kind: Kind = .requestResponse,
        clientContext: String? = nil,
        wantsLogTail: Bool = false
    ) {
        self.function = function
        self.qualifier = qualifier
        self.payload = payload
        self.requestID = requestID
        self.kind = kind
        self.clientContext = clientContext
        self.wantsLogTail = wantsLogTail
    }

    /// A fresh lower-case version-4 UUID, like Lambda's request ids.
    public static func makeRequestID() -> String {
        RequestIDs.next()
    }
}

/// What an invocation returned.
public struct InvocationResult: Sendable {
    public var requestID: String
    /// The function's result, or its error object when ``isFunctionError``.
    public var payload: Data
    /// `true` when the handler threw, timed out or failed its init phase.
    public var isFunctionError: Bool
    /// The last 4 KB of the invocation's log, when the invocation asked for it.
    public var logTail: String?
    /// `$LATEST`: Galley deploys one version of each function.
    public var executedVersion: String { "$LATEST" }
}

/// Request ids without a system call each: a counter, mixed with a random key drawn once per
/// process by SplitMix64 (a bijection, so ids never repeat within a process), formatted as a UUID.
enum RequestIDs {
    private static let key: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let count = counter.add(1, ordering: .relaxed).newValue
        var high = mix(count ^ key.0)
        var low = mix(count &+ key.1)
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(0xC << 60)) | (0x8 << 60)  // variant 1
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, _ nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[index] = hexDigit(value >> UInt64(shift))
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, 8)
            dash()
            put((high >> 16) & 0xFFFF, 4)
            dash()
            put(high & 0xFFFF, 4)
            dash()
            put(low >> 48, 4)
            dash()
            put(low & 0xFFFF_FFFF_FFFF, 12)
            return index
        }
    }

    /// The lower-case hex digit of `value`'s last four bits.
    @inline(__always)
    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value & 0xF)
        return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// An X-Ray trace header, `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0`,
    /// its random parts drawn as request ids are (no system call, one string).
    static func traceHeader(epochSeconds: UInt64) -> String {
        let first = counter.add(1, ordering: .relaxed).newValue
        let second = counter.add(1, ordering: .relaxed).newValue
        let root = (mix(first ^ key.0), mix(first &+ key.1))
        let parent = mix(second ^ key.0)
        return String(unsafeUninitializedCapacity: 74) { buffer in
            var index = 0
            func put(_ text: StaticString) {
                for byte in UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount) {
                    buffer[index] = byte
                    index += 1
                }
            }
            func put(_ value: UInt64, _ nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[index] = hexDigit(value >> UInt64(shift))
                    index += 1
                }
            }
            put("Root=1-")
            put(epochSeconds & 0xFFFF_FFFF, 8)
            put("-")
            put(root.0 >> 32, 8)
            put(root.1, 16)
            put(";Parent=")
            put(parent, 16)
            put(";Sampled=0")
            return index
        }
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
