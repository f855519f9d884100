#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Decodes an event reading only what the event type asks for: a route function whose `Event`
/// reads three fields of an API Gateway event does not pay for parsing the other forty.
///
/// It gives exactly what `JSONDecoder` gives, or defers to it: whenever anything is not plainly
/// supported (a number that is not a plain literal for an integer type, a `Float`, `Data`, `Date`,
/// `URL` or `Decimal`, a key or a string it cannot read, malformed JSON anywhere in the document)
/// or any decoding error is thrown, even one the event type catches, the document is decoded
/// again by `JSONDecoder`, whose value or error is the answer. So errors keep `JSONDecoder`'s
/// words, and a type that tries alternatives (`try? decode(Int.self)`, then `String`) takes the
/// same branch as it would there.
package struct LazyJSONDecoder: Sendable {
    let fallback: JSONDecoder

    /// With a default `JSONDecoder` behind it: for events.
    static let standard = LazyJSONDecoder(fallback: JSONDecoder())

    package init(fallback: JSONDecoder) {
        self.fallback = fallback
    }

    /// Past this size JSONDecoder reads the event: its byte loops are compiled optimised even in a
    /// debug build of the application, and a large event is mostly one large value (a body) that
    /// both read whole anyway.
    static let largest = 64 * 1024

    package func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        if data.count <= Self.largest, let value = Self.lazily(type, from: data) { return value }
        return try fallback.decode(type, from: data)
    }

    /// The value read lazily, or `nil` when `JSONDecoder` must decide.
    static func lazily<Value: Decodable>(_ type: Value.Type, from data: Data) -> Value? {
        let document = Document(copying: data)
        guard let start = document.skipWhitespace(from: 0), document.isWholeDocument(from: start),
            let value = try? LazyValue.decode(type, at: start, in: document, path: []), !document.aborted
        else { return nil }
        return value
    }
}

/// Why the lazy path gave up; never seen by callers.
struct LazyJSONUnsupported: Error {}

/// The bytes, and whether anything went off the plain path.
final class Document {
    /// A copy of the document, read without bounds checks or reference counting: the scanner
    /// checks every index against `count` itself.
    let bytes: UnsafeBufferPointer<UInt8>
    var aborted = false
    /// The values being decoded, by position and type, outermost first: a type whose
    /// `init(from:)` asks a single-value container for itself again (as the standard integer
    /// types do) gives up instead of recursing. A list, not a set: it is as short as the
    /// document is deep, and hashing cost more than the search.
    var inProgress: [InProgress] = []

    struct InProgress: Equatable {
        var index: Int
        var type: ObjectIdentifier
    }

    init(copying data: Data) {
        let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: data.count)
        _ = copy.initialize(fromContentsOf: data)
        bytes = UnsafeBufferPointer(copy)
    }

    deinit {
        bytes.deallocate()
    }

    /// Gives up on the lazy path; returns the error to throw.
    func abort() -> LazyJSONUnsupported {
        aborted = true
        return LazyJSONUnsupported()
    }

    func skipWhitespace(from index: Int) -> Int? {
        var index = index
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return index
            }
        }
        return nil
    }

    /// The root object's members, listed by the pass that checks the whole document, so that its
    /// container does not scan the document a second time.
    private var root: (start: Int, members: [Member])?

    /// Whether the value at `start` is valid and followed by nothing but whitespace.
    func isWholeDocument(from start: Int) -> Bool {
        let end: Int
        do {
            if bytes[start] == UInt8(ascii: "{") {
                var members: [Member] = []
                end = try object(at: start, into: &members, keep: true)
                root = (start, members)
            } else {
                end = try skipValue(at: start)
            }
        } catch {
            return false
        }
        return skipWhitespace(from: end) == nil
    }

    /// The members of the object at `start`.
    func members(ofObjectAt start: Int) throws(LazyJSONUnsupported) -> [Member] {
        if let root, root.start == start { return root.members }
        var members: [Member] = []
        _ = try object(at: start, into: &members, keep: true)
        return members
    }

    /// Where the value at `index` ends; checks its syntax on the way.
    func skipValue(at index: Int) throws(LazyJSONUnsupported) -> Int {
        guard index < bytes.count else { throw abort() }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return try stringEnd(at: index).end
        case UInt8(ascii: "{"):
            var members: [Member] = []
            return try object(at: index, into: &members, keep: false)
        case UInt8(ascii: "["):
            var elements: [Int] = []
            return try array(at: index, into: &elements, keep: false)
        case UInt8(ascii: "t"): return try literal("true", at: index)
        case UInt8(ascii: "f"): return try literal("false", at: index)
        case UInt8(ascii: "n"): return try literal("null", at: index)
        default: return try numberEnd(at: index)
        }
    }

    func literal(_ word: StaticString, at index: Int) throws(LazyJSONUnsupported) -> Int {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw abort() }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw abort() }
        return index + count
    }

    /// A number's end, by JSON's grammar.
    func numberEnd(at start: Int) throws(LazyJSONUnsupported) -> Int {
        var index = start
        func digits() -> Int {
            let first = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - first
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let integer = index
        guard digits() > 0 else { throw abort() }
        if bytes[integer] == UInt8(ascii: "0"), index - integer > 1 { throw abort() }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw abort() }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard digits() > 0 else { throw abort() }
        }
        return index
    }

    /// A string's closing quote + 1, and whether it holds escapes.
    func stringEnd(at start: Int) throws(LazyJSONUnsupported) -> (end: Int, escaped: Bool) {
        var index = start + 1
        var escaped = false
        while index < bytes.count {
            // Eight bytes at a time, up to the first that may stop the string.
            while index + 8 <= bytes.count {
                let stops = Self.stringStops(
                    UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self))
                )
                guard stops == 0 else {
                    index += stops.trailingZeroBitCount / 8
                    break
                }
                index += 8
            }
            guard index < bytes.count else { break }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { return (index + 1, escaped) }
            if byte < 0x20 { throw abort() }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                guard index + 1 < bytes.count else { throw abort() }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    _ = try hex4(at: index + 2)
                    index += 6
                default:
                    throw abort()
                }
            } else {
                index += 1
            }
        }
        throw abort()
    }

    /// The high bit of each byte of `word` (read little-endian: the first byte lowest) that is a
    /// quote, a backslash or below 0x20, by the usual tests for a zero byte and for a byte below a
    /// bound. A byte is flagged wrongly only above a byte flagged rightly (by a borrow from it), so
    /// the lowest flag is always exact: where a string's plain run ends.
    static func stringStops(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let quoteByte = (quote &- ones) & ~quote
        let backslashByte = (backslash &- ones) & ~backslash
        let controlByte = (word &- ones &* 0x20) & ~word
        return (quoteByte | backslashByte | controlByte) & (ones &* 0x80)
    }

    /// The string at `start`, unescaped.
    func string(at start: Int) throws(LazyJSONUnsupported) -> String {
        guard start < bytes.count, bytes[start] == UInt8(ascii: "\"") else { throw abort() }
        let (end, escaped) = try stringEnd(at: start)
        if !escaped {
            guard let text = String(validating: bytes[(start + 1)..<(end - 1)], as: UTF8.self) else { throw abort() }
            return text
        }
        var output: [UInt8] = []
        output.reserveCapacity(end - start)
        var index = start + 1
        while index < end - 1 {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            let code = bytes[index + 1]
            index += 2
            switch code {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(code)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(at: index)
                index += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by its low one.
                    guard index + 6 <= end - 1, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else { throw abort() }
                    let low = try hex4(at: index + 2)
                    guard (0xDC00..<0xE000).contains(low) else { throw abort() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw abort()
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw abort() }
                UTF8.encode(unicode) { output.append($0) }
            default:
                throw abort()
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else { throw abort() }
        return text
    }

    func hex4(at index: Int) throws(LazyJSONUnsupported) -> UInt32 {
        guard index + 4 <= bytes.count else { throw abort() }
        var value: UInt32 = 0
        for byte in bytes[index..<(index + 4)] {
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw abort()
            }
            value = value << 4 | digit
        }
        return value
    }

    /// An object member: where its key's quote and its value start.
    struct Member {
        var key: Int
        var value: Int
        /// Past the key's closing quote, and whether the key holds escapes: found while scanning,
        /// kept so that comparing keys does not scan them again.
        var keyEnd: Int
        var keyEscaped: Bool
    }

    /// Scans the object at `start`; with `keep`, lists its members. Returns its end.
    func object(at start: Int, into members: inout [Member], keep: Bool) throws(LazyJSONUnsupported) -> Int {
        guard var index = skipWhitespace(from: start + 1) else { throw abort() }
        if bytes[index] == UInt8(ascii: "}") { return index + 1 }
        while true {
            guard bytes[index] == UInt8(ascii: "\"") else { throw abort() }
            let key = index
            let (keyEnd, keyEscaped) = try stringEnd(at: index)
            index = keyEnd
            guard let colon = skipWhitespace(from: index), bytes[colon] == UInt8(ascii: ":"),
                let value = skipWhitespace(from: colon + 1)
            else { throw abort() }
            if keep { members.append(Member(key: key, value: value, keyEnd: keyEnd, keyEscaped: keyEscaped)) }
            guard let next = skipWhitespace(from: try skipValue(at: value)) else { throw abort() }
            if bytes[next] == UInt8(ascii: "}") { return next + 1 }
            guard bytes[next] == UInt8(ascii: ","), let following = skipWhitespace(from: next + 1) else {
                throw abort()
            }
            index = following
        }
    }

    /// Scans the array at `start`; with `keep`, lists where its elements start. Returns its end.
    func array(at start: Int, into elements: inout [Int], keep: Bool) throws(LazyJSONUnsupported) -> Int {
        guard var index = skipWhitespace(from: start + 1) else { throw abort() }
        if bytes[index] == UInt8(ascii: "]") { return index + 1 }
        while true {
            if keep { elements.append(index) }
            guard let next = skipWhitespace(from: try skipValue(at: index)) else { throw abort() }
            if bytes[next] == UInt8(ascii: "]") { return next + 1 }
            guard bytes[next] == UInt8(ascii: ","), let following = skipWhitespace(from: next + 1) else {
                throw abort()
            }
            index = following
        }
    }

    /// The object at `start` whose values are all strings; a repeated key defers to `JSONDecoder`.
    func stringDictionary(at start: Int) throws(LazyJSONUnsupported) -> [String: String] {
        guard bytes[start] == UInt8(ascii: "{") else { throw abort() }
        var members: [Member] = []
        _ = try object(at: start, into: &members, keep: true)
        var dictionary: [String: String] = Dictionary(minimumCapacity: members.count)
        for member in members {
            guard dictionary.updateValue(try string(at: member.value), forKey: try string(at: member.key)) == nil
            else { throw abort() }
        }
        return dictionary
    }

    /// Whether `member`'s key is `name`: byte for byte, or unescaped first.
    func key(of member: Member, equals name: String) throws(LazyJSONUnsupported) -> Bool {
        if member.keyEscaped { return try string(at: member.key) == name }
        let (position, end) = (member.key, member.keyEnd)
        var name = name
        return name.withUTF8 { utf8 in
            utf8.count == end - position - 2 && utf8.elementsEqual(bytes[(position + 1)..<(end - 1)])
        }
    }

    func isNull(at index: Int) -> Bool {
        index + 4 <= bytes.count && bytes[index] == UInt8(ascii: "n") && bytes[index + 1] == UInt8(ascii: "u")
    }

    /// A plain integer literal (no fraction, no exponent) as `Value`.
    func integer<Value: FixedWidthInteger>(at index: Int, as type: Value.Type) throws(LazyJSONUnsupported) -> Value {
        let end = try numberEnd(at: index)
        var value: Value = 0
        var position = index
        let negative = bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        guard position < end else { throw abort() }
        while position < end {
            let byte = bytes[position]
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { throw abort() }
            let digit = Value(byte - UInt8(ascii: "0"))
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) =
                negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflowA, !overflowB else { throw abort() }
            value = next
            position += 1
        }
        if negative && value == 0 && Value.isSigned == false { throw abort() }
        return value
    }

    func double(at index: Int) throws(LazyJSONUnsupported) -> Double {
        let end = try numberEnd(at: index)
        guard let text = String(validating: bytes[index..<end], as: UTF8.self), let value = Double(text),
            value.isFinite
        else { throw abort() }
        return value
    }

    func bool(at index: Int) throws(LazyJSONUnsupported) -> Bool {
        guard index < bytes.count else { throw abort() }
        switch bytes[index] {
        case UInt8(ascii: "t"):
            _ = try literal("true", at: index)
            return true
        case UInt8(ascii: "f"):
            _ = try literal("false", at: index)
            return false
        default: throw abort()
        }
    }
}

/// A value of the document, as a `Decoder`.
struct LazyDecoder: Decoder {
    let document: Document
    let start: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ document: Document, _ start: Int, _ codingPath: [any CodingKey]) {
        self.document = document
        self.start = start
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard document.bytes[start] == UInt8(ascii: "{") else { throw document.abort() }
        return KeyedDecodingContainer(
            LazyKeyedContainer<Key>(
                document: document,
                members: try document.members(ofObjectAt: start),
                codingPath: codingPath
            )
        )
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard document.bytes[start] == UInt8(ascii: "[") else { throw document.abort() }
        var elements: [Int] = []
        _ = try document.array(at: start, into: &elements, keep: true)
        return LazyUnkeyedContainer(document: document, elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        LazySingleValueContainer(document: document, start: start, codingPath: codingPath)
    }
}

/// Types JSONDecoder decodes its own way, and Float (whose rounding it does its own way): a decoder
/// that gives exactly what JSONDecoder gives leaves them to it (``LazyJSONDecoder``, and
/// ``EventValueDecoding``).
@inline(__always)
func isJSONDecodersOwn<Value>(_ type: Value.Type) -> Bool {
    type == Data.self || type == Date.self || type == URL.self || type == Decimal.self || type == Float.self
}

/// What all three containers decode the same way.
enum LazyValue {
    static func decode<Value: Decodable>(
        _ type: Value.Type,
        at index: Int,
        in document: Document,
        path: @autoclosure () -> [any CodingKey]
    ) throws -> Value {
        if isJSONDecodersOwn(Value.self) { throw document.abort() }
        // Compared by metatype: a cast (`is String.Type`) per case costs more than the decoding.
        if Value.self == String.self { return try document.string(at: index) as! Value }
        if Value.self == Bool.self { return try document.bool(at: index) as! Value }
        if Value.self == Int.self { return try document.integer(at: index, as: Int.self) as! Value }
        if Value.self == Double.self { return try document.double(at: index) as! Value }
        if Value.self == Int64.self { return try document.integer(at: index, as: Int64.self) as! Value }
        if Value.self == Int32.self { return try document.integer(at: index, as: Int32.self) as! Value }
        if Value.self == UInt.self { return try document.integer(at: index, as: UInt.self) as! Value }
        if Value.self == UInt64.self { return try document.integer(at: index, as: UInt64.self) as! Value }
        if Value.self == Int8.self { return try document.integer(at: index, as: Int8.self) as! Value }
        if Value.self == Int16.self { return try document.integer(at: index, as: Int16.self) as! Value }
        if Value.self == UInt8.self { return try document.integer(at: index, as: UInt8.self) as! Value }
        if Value.self == UInt16.self { return try document.integer(at: index, as: UInt16.self) as! Value }
        if Value.self == UInt32.self { return try document.integer(at: index, as: UInt32.self) as! Value }
        // An API Gateway event's parameters and headers: read directly, without a keyed container.
        if Value.self == [String: String].self { return try document.stringDictionary(at: index) as! Value }
        let key = Document.InProgress(index: index, type: ObjectIdentifier(Value.self))
        guard !document.inProgress.contains(key) else { throw document.abort() }
        document.inProgress.append(key)
        defer { document.inProgress.removeLast() }
        return try Value(from: LazyDecoder(document, index, path()))
    }
}

struct LazyKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let document: Document
    let members: [Document.Member]
    let codingPath: [any CodingKey]
    /// For a large object, where each name's first member is, so that reading every key is not
    /// quadratic.
    let index: [String: Int]?

    init(document: Document, members: [Document.Member], codingPath: [any CodingKey]) {
        self.document = document
        self.members = members
        self.codingPath = codingPath
        if members.count > 16 {
            var index: [String: Int] = [:]
            for member in members {
                guard let name = try? document.string(at: member.key) else { break }
                if index[name] == nil { index[name] = member.value }
            }
            self.index = index
        } else {
            self.index = nil
        }
    }

    var allKeys: [Key] {
        var seen: Set<String> = []
        var keys: [Key] = []
        for member in members {
            guard let name = try? document.string(at: member.key) else { return [] }
            if seen.insert(name).inserted, let key = Key(stringValue: name) { keys.append(key) }
        }
        return keys
    }

    /// The first member named `key` (JSONDecoder's choice when a key is repeated).
    private func value(for key: Key) throws -> Int? {
        if let index { return index[key.stringValue] }
        for member in members where try document.key(of: member, equals: key.stringValue) {
            return member.value
        }
        return nil
    }

    private func required(_ key: Key) throws -> Int {
        guard let index = try value(for: key) else { throw document.abort() }
        return index
    }

    func contains(_ key: Key) -> Bool {
        (try? value(for: key)) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        document.isNull(at: try required(key))
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try LazyValue.decode(type, at: try required(key), in: document, path: codingPath + [key])
    }

    // An optional member in one look-up, where the protocol's default takes three (contains,
    // decodeNil, decode): absent or null is `nil`, as with JSONDecoder.
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try optional(type, forKey: key)
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try optional(type, forKey: key)
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try optional(type, forKey: key)
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try optional(type, forKey: key)
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try optional(type, forKey: key)
    }

    private func optional<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let index = try value(for: key), !document.isNull(at: index) else { return nil }
        return try LazyValue.decode(type, at: index, in: document, path: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try LazyDecoder(document, try required(key), codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try LazyDecoder(document, try required(key), codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        throw document.abort()
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        throw document.abort()
    }
}

struct LazyUnkeyedContainer: UnkeyedDecodingContainer {
    let document: Document
    let elements: [Int]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(document: Document, elements: [Int], codingPath: [any CodingKey]) {
        self.document = document
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private func current() throws -> Int {
        guard currentIndex < elements.count else { throw document.abort() }
        return elements[currentIndex]
    }

    private var path: [any CodingKey] { codingPath + [JSONIndexKey(intValue: currentIndex)] }

    mutating func decodeNil() throws -> Bool {
        guard document.isNull(at: try current()) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try LazyValue.decode(type, at: try current(), in: document, path: path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try LazyDecoder(document, try current(), path).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try LazyDecoder(document, try current(), path).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        throw document.abort()
    }
}

struct LazySingleValueContainer: SingleValueDecodingContainer {
    let document: Document
    let start: Int
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        document.isNull(at: start)
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try LazyValue.decode(type, at: start, in: document, path: codingPath)
    }
}
