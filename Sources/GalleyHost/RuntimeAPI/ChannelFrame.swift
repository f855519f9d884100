/// One message on the private channel between the host and a `galley worker`: the Runtime API's
/// messages (next, response, error, init error) in a compact framing, one write and one read each.
///
/// On the wire: a kind byte, the body's length as a 4-byte big-endian integer, then the body.
/// Strings inside a body are a 4-byte big-endian length and UTF-8 bytes; the last field of a body
/// that carries a payload is the payload itself, to the end of the body.
struct ChannelFrame: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        /// Worker → host: the init phase is over, the worker waits for its first invocation.
        case ready = 0x52  // R
        /// Worker → host: the init phase failed. Body: error type, error object.
        case initError = 0x58  // X
        /// Host → worker: an invocation. Body: request id, deadline (ms since the epoch, 8 bytes),
        /// function ARN, trace id, client context (empty for none), payload.
        case invoke = 0x49  // I
        /// Worker → host: the invocation's result. Body: request id, payload.
        case response = 0x4F  // O
        /// Worker → host: the invocation failed. Body: request id, error type, error object.
        case error = 0x45  // E
        /// Worker → host: a key-value store call. Body: a JSON ``StoreCall``.
        case storeCall = 0x53  // S
        /// Host → worker: the answer to the store call. Body: JSON.
        case storeAnswer = 0x41  // A
    }

    /// Bytes before a body: the kind and the body's length.
    static let headerSize = 5

    var kind: Kind
    var body: [UInt8]

    static func appendLength(_ length: Int, to bytes: inout [UInt8]) {
        let value = UInt32(truncatingIfNeeded: length)
        bytes += [
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value),
        ]
    }

    /// The wire bytes of a frame whose body is `fields` (each length-prefixed) followed by
    /// `payload` as it is, built in one buffer. An invocation's deadline follows its request id.
    static func encode<Payload: Collection<UInt8>>(
        _ kind: Kind,
        fields: [String],
        deadline: Int64? = nil,
        payload: Payload
    ) -> [UInt8] {
        let length = fields.reduce(0) { $0 + $1.utf8.count + 4 } + (deadline == nil ? 0 : 8) + payload.count
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + length)
        bytes.append(kind.rawValue)
        appendLength(length, to: &bytes)
        for (index, field) in fields.enumerated() {
            appendLength(field.utf8.count, to: &bytes)
            bytes += field.utf8
            if index == 0, let deadline {
                for shift in stride(from: 56, through: 0, by: -8) {
                    bytes.append(UInt8(truncatingIfNeeded: deadline >> shift))
                }
            }
        }
        bytes += payload
        return bytes
    }

    init(kind: Kind, body: [UInt8]) {
        self.kind = kind
        self.body = body
    }

    /// Reads a body's fields in order.
    struct Reader {
        private let body: [UInt8]
        private var offset = 0

        init(_ body: [UInt8]) {
            self.body = body
        }

        mutating func string() throws(ChannelError) -> String {
            let length = try integer(bytes: 4)
            guard length <= body.count - offset else { throw ChannelError("a field runs past its frame") }
            defer { offset += Int(length) }
            return String(decoding: body[offset..<offset + Int(length)], as: UTF8.self)
        }

        mutating func int64() throws(ChannelError) -> Int64 {
            Int64(bitPattern: try integer(bytes: 8))
        }

        /// Everything after the fields read so far.
        mutating func rest() -> ArraySlice<UInt8> {
            defer { offset = body.count }
            return body[offset...]
        }

        private mutating func integer(bytes count: Int) throws(ChannelError) -> UInt64 {
            guard body.count - offset >= count else { throw ChannelError("a frame ends inside a field") }
            var value: UInt64 = 0
            for byte in body[offset..<offset + count] { value = value << 8 | UInt64(byte) }
            offset += count
            return value
        }
    }

    /// Splits whole frames off the front of `buffer`; bytes of an unfinished frame stay.
    ///
    /// - Throws: ``ChannelError`` for an unknown kind or a frame over `maxBody`.
    static func split(_ buffer: inout [UInt8], maxBody: Int) throws(ChannelError) -> [ChannelFrame] {
        var frames: [ChannelFrame] = []
        var offset = 0
        while buffer.count - offset >= headerSize {
            guard let kind = Kind(rawValue: buffer[offset]) else {
                throw ChannelError("unknown frame kind \(buffer[offset])")
            }
            let length = buffer[offset + 1..<offset + 5].reduce(0) { $0 << 8 | Int($1) }
            guard length <= maxBody else { throw ChannelError("a frame of \(length) bytes is over the limit") }
            guard buffer.count - offset - headerSize >= length else { break }
            frames.append(
                ChannelFrame(kind: kind, body: Array(buffer[offset + headerSize..<offset + headerSize + length]))
            )
            offset += headerSize + length
        }
        if offset > 0 { buffer.removeFirst(offset) }
        return frames
    }
}

/// The channel broke: the other side closed it or sent something that is not a frame.
public struct ChannelError: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
