/// A one-pass JSON syntax check over raw bytes, with no allocation: events are checked before
/// they reach a handler so that bad input is refused with its position, and changes nothing.
package enum JSONSyntax {
    package struct Error: Swift.Error, Sendable, CustomStringConvertible {
        var message: String
        var line: Int
        var column: Int
        /// In ``validateDocument(_:)``, the dotted path of the member at fault, e.g.
        /// `functions.hello.timeout`; otherwise empty.
        var path = ""
        package var description: String { "line \(line), column \(column): \(message)" }
    }

    /// Validates a document a person wrote (runtime.json), and more strictly than an event: a key
    /// twice in one object, or a number no `Double` can hold (`1e400`), is refused with its path.
    static func validateDocument(_ bytes: [UInt8]) throws(Error) {
        try bytes.withUnsafeBufferPointer { buffer throws(Error) in
            var parser = Parser(bytes: buffer)
            parser.path = []
            try parser.document()
        }
    }

    /// Throws the first syntax error in `bytes`, with its line and column.
    package static func validate(_ bytes: some Collection<UInt8>) throws(Error) {
        let result: Result<Void, Error>? = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = Parser(bytes: buffer)
            return Result { () throws(Error) in try parser.document() }
        }
        if let result {
            try result.get()
        } else {
            let array = Array(bytes)
            try array.withUnsafeBufferPointer { buffer throws(Error) in
                var parser = Parser(bytes: buffer)
                try parser.document()
            }
        }
    }

    /// Validates `bytes` as one JSON object and returns the byte ranges of its top-level members'
    /// values by key (keys with escapes are taken literally).
    static func members(of bytes: [UInt8]) throws(Error) -> [String: Range<Int>] {
        try bytes.withUnsafeBufferPointer { buffer throws(Error) in
            var parser = Parser(bytes: buffer)
            parser.members = [:]
            try parser.document()
            guard let members = parser.members, parser.sawObject else {
                throw Error(message: "expected a JSON object", line: 1, column: 1)
            }
            return members
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var depth = 0
        var members: [String: Range<Int>]?
        var sawObject = false
        /// Set in strict mode: the keys and indices from the root to the current value.
        var path: [String]?

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func document() throws(Error) {
            skipWhitespace()
            guard index < bytes.count else { throw failure("empty input, expected a JSON value") }
            try value()
            skipWhitespace()
            if index < bytes.count { throw failure("unexpected \(describe(bytes[index])) after the JSON value") }
        }

        mutating func value() throws(Error) {
            guard index < bytes.count else { throw failure("unexpected end of input, expected a value") }
            switch bytes[index] {
            case UInt8(ascii: "{"): try object()
            case UInt8(ascii: "["): try array()
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw failure("unexpected \(describe(bytes[index])), expected a value")
            }
        }

        mutating func object() throws(Error) {
            if depth == 0 { sawObject = true }
            try enter()
            index += 1
            skipWhitespace()
            if peek(UInt8(ascii: "}")) {
                index += 1
                depth -= 1
                return
            }
            var keys: Set<String> = []
            while true {
                skipWhitespace()
                guard peek(UInt8(ascii: "\"")) else { throw failure("expected a string key \(found)") }
                let keyStart = index + 1
                try string()
                let keyEnd = index - 1
                if path != nil {
                    let key = String(decoding: bytes[keyStart..<keyEnd], as: UTF8.self)
                    path!.append(key)
                    guard keys.insert(key).inserted else {
                        index = keyStart - 1
                        throw strictFailure("the key \"\(key)\" appears twice in one object; keep one")
                    }
                }
                skipWhitespace()
                guard peek(UInt8(ascii: ":")) else { throw failure("expected ':' \(found)") }
                index += 1
                skipWhitespace()
                let valueStart = index
                try value()
                if path != nil { path!.removeLast() }
                if depth == 1, members != nil {
                    members![String(decoding: bytes[keyStart..<keyEnd], as: UTF8.self)] = valueStart..<index
                }
                skipWhitespace()
                if peek(UInt8(ascii: ",")) {
                    index += 1
                } else if peek(UInt8(ascii: "}")) {
                    index += 1
                    depth -= 1
                    return
                } else {
                    throw failure("expected ',' or '}' \(found)")
                }
            }
        }

        mutating func array() throws(Error) {
            try enter()
            index += 1
            skipWhitespace()
            if peek(UInt8(ascii: "]")) {
                index += 1
                depth -= 1
                return
            }
            var position = 0
            while true {
                skipWhitespace()
                if path != nil { path!.append("[\(position)]") }
                try value()
                if path != nil { path!.removeLast() }
                position += 1
                skipWhitespace()
                if peek(UInt8(ascii: ",")) {
                    index += 1
                } else if peek(UInt8(ascii: "]")) {
                    index += 1
                    depth -= 1
                    return
                } else {
                    throw failure("expected ',' or ']' \(found)")
                }
            }
        }

        mutating func string() throws(Error) {
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < bytes.count else { break }
                    switch bytes[index] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 1
                    case UInt8(ascii: "u"):
                        let unit = try escapedUnit()
                        if (0xDC00...0xDFFF).contains(unit) {
                            throw failure("lone low surrogate \\u\(hex(unit)) in string")
                        }
                        if (0xD800...0xDBFF).contains(unit) {
                            guard peek(UInt8(ascii: "\\")), index + 1 < bytes.count,
                                bytes[index + 1] == UInt8(ascii: "u")
                            else { throw failure("high surrogate \\u\(hex(unit)) without its low half in string") }
                            index += 1
                            let low = try escapedUnit()
                            guard (0xDC00...0xDFFF).contains(low) else {
                                throw failure("high surrogate \\u\(hex(unit)) without its low half in string")
                            }
                        }
                    default:
                        throw failure("invalid escape \\\(describe(bytes[index])) in string")
                    }
                case 0..<0x20:
                    throw failure("unescaped control character in string")
                case 0x80...:
                    try scalar()
                default:
                    index += 1
                }
            }
            throw failure("unterminated string")
        }

        /// The four hex digits after `\u`, with `index` on the `u`.
        mutating func escapedUnit() throws(Error) -> UInt32 {
            index += 1
            var unit: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count, isHexDigit(bytes[index]) else {
                    throw failure("invalid \\u escape in string")
                }
                let byte = bytes[index]
                unit =
                    unit << 4
                    | UInt32(isDigit(byte) ? byte - UInt8(ascii: "0") : (byte | 0x20) - UInt8(ascii: "a") + 10)
                index += 1
            }
            return unit
        }

        func hex(_ unit: UInt32) -> String { String(unit, radix: 16, uppercase: true) }

        /// One multi-byte UTF-8 sequence: the shortest form, no surrogates, at most U+10FFFF.
        mutating func scalar() throws(Error) {
            let lead = bytes[index]
            let (count, minimum): (Int, UInt32) =
                switch lead {
                case 0xC2...0xDF: (2, 0x80)
                case 0xE0...0xEF: (3, 0x800)
                case 0xF0...0xF4: (4, 0x10000)
                default: (0, 0)
                }
            guard count > 0, index + count <= bytes.count else { throw failure("invalid UTF-8 in string") }
            var value = UInt32(lead) & (0xFF >> (count + 1))
            for offset in 1..<count {
                let byte = bytes[index + offset]
                guard byte & 0xC0 == 0x80 else { throw failure("invalid UTF-8 in string") }
                value = value << 6 | UInt32(byte & 0x3F)
            }
            guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else {
                throw failure("invalid UTF-8 in string")
            }
            index += count
        }

        mutating func number() throws(Error) {
            let start = index
            try numberSyntax()
            if path != nil { try checkRange(start) }
        }

        mutating func numberSyntax() throws(Error) {
            if peek(UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit \(found)") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if peek(UInt8(ascii: ".")) {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit after '.'") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
                index += 1
                if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw failure("expected a digit in exponent") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
        }

        /// In strict mode, a number that overflows a `Double` (`1e400`) is an error at its start.
        mutating func checkRange(_ start: Int) throws(Error) {
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let number = Double(text), !number.isFinite else { return }
            index = start
            throw strictFailure("\(text) is out of range: no number that large can be held")
        }

        mutating func literal(_ word: StaticString) throws(Error) {
            let start = index
            for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
                guard index < bytes.count, bytes[index] == expected else {
                    index = start
                    throw failure("unexpected \(describe(bytes[start])), expected a value")
                }
                index += 1
            }
        }

        mutating func enter() throws(Error) {
            depth += 1
            if depth > 512 { throw failure("nesting deeper than 512 levels") }
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
                default: return
                }
            }
        }

        func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        func isHexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
        }

        var found: String { index < bytes.count ? "but found \(describe(bytes[index]))" : "but the input ended" }

        func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        }

        /// `functions.hello.routes[0]`, from ``path``.
        var dottedPath: String {
            guard let path else { return "" }
            var text = ""
            for component in path {
                if !text.isEmpty, !component.hasPrefix("[") { text += "." }
                text += component
            }
            return text
        }

        /// A failure of the strict checks, which names the member's path.
        func strictFailure(_ message: String) -> Error {
            var error = failure(message)
            error.path = dottedPath
            return error
        }

        func failure(_ message: String) -> Error {
            var line = 1
            var column = 1
            for byte in bytes[..<min(index, bytes.count)] {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else if byte & 0xC0 != 0x80 {
                    column += 1
                }
            }
            return Error(message: message, line: line, column: column)
        }
    }
}
