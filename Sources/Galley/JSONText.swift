/// JSON string literals without an encoder.
package enum JSONString {
    /// `text` as a quoted, escaped JSON string.
    package static func quote(_ text: String) -> String {
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

    package static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Appends the UTF-8 `bytes` of a string's content, escaped, without quotes.
    package static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to result: inout [UInt8]) {
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
///
/// Its entry points are not generic: the host's event writer calls them across modules for every
/// routed request, and a generic one is not specialised there (it cost several times as much).
package struct JSONBytes {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// JSON text as it is: punctuation, keys, literals.
    package mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A member's name and its colon, after a comma unless it is its object's first: `,"name":`.
    package mutating func key(_ name: StaticString, first: Bool) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// ``key(_:first:)`` for a name that may need escaping.
    package mutating func key(_ name: String, first: Bool) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        string(name)
        bytes.append(UInt8(ascii: ":"))
    }

    /// A quoted, escaped string.
    package mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { quoted($0) }
    }

    /// A quoted, escaped string.
    package mutating func string(_ text: Substring) {
        var text = text
        text.withUTF8 { quoted($0) }
    }

    private mutating func quoted(_ content: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        JSONString.appendEscaped(content, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// An integer.
    package mutating func number(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }
}
