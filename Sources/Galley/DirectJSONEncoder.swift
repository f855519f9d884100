#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Encodes a result as `JSONEncoder.sortingKeys()` does, writing bytes as the value is walked
/// instead of building JSONEncoder's tree of values first: a handler's answer of a few fields
/// costs less than half of what it costs there.
///
/// It gives exactly `fallback`'s bytes, or defers to it: whenever anything is not plainly supported
/// (`Date`, `Data`, `URL`, `Decimal`, 128-bit integers, a float that is not finite, more than
/// 64 KiB of JSON, a nested or super encoder, a container kept and written to after its value was
/// encoded, a key given twice, a value that encodes nothing or asks for two containers) or
/// anything throws, even an error the value catches, the value is encoded again by `fallback`,
/// whose bytes or error are the answer. `fallback` must be compact, sort its keys and use the
/// default strategies.
package struct DirectJSONEncoder: Sendable {
    let fallback: JSONEncoder

    /// With `JSONEncoder.sortingKeys()` behind it: for results and stored values.
    static let sortingKeys = DirectJSONEncoder(fallback: .sortingKeys())

    package init(fallback: JSONEncoder) {
        self.fallback = fallback
    }

    package func encode<Value: Encodable>(_ value: Value) throws -> Data {
        if let bytes = Self.directly(value) { return Data(bytes) }
        return try fallback.encode(value)
    }

    /// The bytes written directly, or `nil` when `JSONEncoder` must decide.
    static func directly<Value: Encodable>(_ value: Value) -> [UInt8]? {
        let writer = JSONByteWriter()
        do {
            try writer.encode(value)
        } catch {
            return nil
        }
        return writer.aborted ? nil : writer.output
    }
}

/// The output and the containers open on it, innermost last.
final class JSONByteWriter {
    var output: [UInt8] = []
    var aborted = false
    private var open: [Container] = []
    /// The members of the open objects, each object's after those of the objects around it.
    private var members: [Member] = []
    private var serial = 0

    /// Past this many open containers `JSONEncoder` decides (it refuses 512).
    static let deepest = 256
    /// Past this many bytes `JSONEncoder` writes the result: its byte loops are compiled optimised
    /// even in a debug build of the application, and a large result is mostly one large value.
    static let largest = 64 * 1024

    struct Container {
        enum Kind { case object, array, single }
        var kind: Kind
        var id: Int
        /// Where its `{` or `[` is.
        var start: Int
        /// Where its members begin in `members`.
        var firstMember: Int
        var count = 0
        /// The key of the member or element being written, for the coding path.
        var key: (any CodingKey)?
    }

    /// An object's member: its key and where `"key":value` is.
    struct Member {
        var key: String
        var start: Int
        var end: Int
    }

    init() {
        output.reserveCapacity(128)
        open.reserveCapacity(8)
    }

    /// The keys of the members being written in the containers below `level`: made only when
    /// someone asks, so that encoding does not keep a path it rarely needs.
    func codingPath(below level: Int) -> [any CodingKey] {
        open.prefix(level).compactMap(\.key)
    }

    /// Gives up on the direct path; returns the error to throw.
    func abort() -> DirectJSONUnsupported {
        aborted = true
        return DirectJSONUnsupported()
    }

    /// Writes `value`, whatever it is.
    func encode<Value: Encodable>(_ value: Value) throws {
        if Value.self == String.self {
            write(string: value as! String)
        } else if Value.self == Int.self {
            write(integer: value as! Int)
        } else if Value.self == Bool.self {
            write(bool: value as! Bool)
        } else if Value.self == Double.self {
            try write(float: value as! Double)
        } else if Value.self == Date.self || Value.self == Data.self || Value.self == URL.self
            || Value.self == Decimal.self
        {
            // Types JSONEncoder writes its own way.
            throw abort()
        } else {
            guard open.count < Self.deepest else { throw abort() }
            let level = open.count
            serial += 1
            try value.encode(to: JSONByteEncoder(writer: self, serial: serial, level: level))
            // The value's own container, and only that one, is still open.
            guard open.count == level + 1 else { throw abort() }
            try close()
        }
    }

    // MARK: Containers

    /// Opens the container of the value `serial`, which must not have one yet.
    func openContainer(_ kind: Container.Kind, serial: Int, level: Int) -> Int {
        guard serial == self.serial, open.count == level, !aborted else {
            aborted = true
            return -1
        }
        self.serial += 1
        let id = self.serial
        open.append(Container(kind: kind, id: id, start: output.count, firstMember: members.count))
        switch kind {
        case .object: output.append(UInt8(ascii: "{"))
        case .array: output.append(UInt8(ascii: "["))
        case .single: break
        }
        return id
    }

    /// Checks that the container `id` is the innermost open one: one that was kept and written to
    /// after its value was done is not supported.
    func begin(_ id: Int) throws(DirectJSONUnsupported) {
        guard !aborted, let last = open.last, last.id == id else { throw abort() }
    }

    private func close() throws(DirectJSONUnsupported) {
        let container = open.removeLast()
        switch container.kind {
        case .single:
            guard container.count == 1 else { throw abort() }
        case .array:
            output.append(UInt8(ascii: "]"))
        case .object:
            defer { members.removeSubrange(container.firstMember...) }
            guard container.count > 1 else {
                output.append(UInt8(ascii: "}"))
                return
            }
            let sorted = members[container.firstMember...].sorted {
                $0.key.utf8.lexicographicallyPrecedes($1.key.utf8)
            }
            var ordered = true
            for (index, member) in sorted.enumerated().dropFirst() {
                let previous = sorted[index - 1]
                // A key given twice: JSONEncoder keeps the last value.
                guard previous.key != member.key else { throw abort() }
                if previous.start > member.start { ordered = false }
            }
            if !ordered {
                var members: [UInt8] = []
                members.reserveCapacity(output.count - container.start)
                for (index, member) in sorted.enumerated() {
                    if index > 0 { members.append(UInt8(ascii: ",")) }
                    members.append(contentsOf: output[member.start..<member.end])
                }
                output.replaceSubrange((container.start + 1)..., with: members)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Writes `"key":` into the object `id`, then the value `body` writes.
    func member(_ key: some CodingKey, of id: Int, _ body: () throws -> Void) throws {
        try begin(id)
        let index = open.count - 1
        if open[index].count > 0 { output.append(UInt8(ascii: ",")) }
        let start = output.count
        let name = key.stringValue
        write(string: name)
        output.append(UInt8(ascii: ":"))
        open[index].key = key
        try body()
        guard output.count <= Self.largest else { throw abort() }
        open[index].key = nil
        open[index].count += 1
        members.append(Member(key: name, start: start, end: output.count))
    }

    /// Writes an element into the array `id`, or the value of the single-value container `id`.
    func element(of id: Int, _ body: () throws -> Void) throws {
        try begin(id)
        let index = open.count - 1
        switch open[index].kind {
        case .array:
            if open[index].count > 0 { output.append(UInt8(ascii: ",")) }
            open[index].key = JSONIndexKey(intValue: open[index].count)
            try body()
            guard output.count <= Self.largest else { throw abort() }
            open[index].key = nil
        case .single:
            guard open[index].count == 0 else { throw abort() }
            try body()
        case .object:
            throw abort()
        }
        open[index].count += 1
    }

    func count(of id: Int) -> Int {
        open.last(where: { $0.id == id })?.count ?? 0
    }

    // MARK: Scalars

    func write(bool: Bool) {
        output.append(contentsOf: bool ? "true".utf8 : "false".utf8)
    }

    func writeNull() {
        output.append(contentsOf: "null".utf8)
    }

    func write<Integer: FixedWidthInteger>(integer: Integer) {
        var magnitude = integer.magnitude
        if Integer.isSigned && integer < 0 { output.append(UInt8(ascii: "-")) }
        // 39 digits hold UInt128; the supported types need at most 20.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { digits in
            var position = digits.count
            repeat {
                position -= 1
                digits[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            output.append(contentsOf: UnsafeBufferPointer(rebasing: digits[position...]))
        }
    }

    /// As JSONEncoder writes a float: its `description` without a trailing `.0`; not-a-number and
    /// the infinities are JSONEncoder's to refuse.
    func write<Float: BinaryFloatingPoint & CustomStringConvertible>(float: Float) throws(DirectJSONUnsupported) {
        guard float.isFinite else { throw abort() }
        var text = float.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        output.append(contentsOf: text.utf8)
    }

    /// A string as JSONEncoder escapes it: `"`, `\` and `/` behind a backslash, control characters
    /// by their short escape or `\u00XX`, everything else as its UTF-8 bytes.
    func write(string: String) {
        guard string.utf8.count <= Self.largest else {
            aborted = true
            return
        }
        output.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var plain = 0
            for (index, byte) in bytes.enumerated() {
                let escape: UInt8
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escape = byte
                case 0x08: escape = UInt8(ascii: "b")
                case 0x0C: escape = UInt8(ascii: "f")
                case 0x0A: escape = UInt8(ascii: "n")
                case 0x0D: escape = UInt8(ascii: "r")
                case 0x09: escape = UInt8(ascii: "t")
                case 0x00..<0x20: escape = UInt8(ascii: "u")
                default: continue
                }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plain..<index]))
                output.append(UInt8(ascii: "\\"))
                output.append(escape)
                if escape == UInt8(ascii: "u") {
                    output.append(contentsOf: [UInt8(ascii: "0"), UInt8(ascii: "0"), hex(byte >> 4), hex(byte & 0xF)])
                }
                plain = index + 1
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plain...]))
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// A lowercase hexadecimal digit, as JSONEncoder writes `\u00XX`.
private func hex(_ digit: UInt8) -> UInt8 {
    digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
}

/// Why the direct path gave up; never seen by callers.
struct DirectJSONUnsupported: Error {}

/// An array element's key in a coding path, as JSONEncoder names it.
struct JSONIndexKey: CodingKey {
    var stringValue: String { "Index \(intValue!)" }
    var intValue: Int?
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// One value being encoded, as an `Encoder`: it may ask for one container.
struct JSONByteEncoder: Encoder {
    let writer: JSONByteWriter
    let serial: Int
    let level: Int

    var codingPath: [any CodingKey] { writer.codingPath(below: level) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(
            JSONByteKeyedContainer<Key>(
                writer: writer,
                id: writer.openContainer(.object, serial: serial, level: level),
                level: level
            )
        )
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        JSONByteUnkeyedContainer(
            writer: writer,
            id: writer.openContainer(.array, serial: serial, level: level),
            level: level
        )
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONByteSingleValueContainer(
            writer: writer,
            id: writer.openContainer(.single, serial: serial, level: level),
            level: level
        )
    }
}

struct JSONByteKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: JSONByteWriter
    let id: Int
    /// Where its value's container is among the open ones.
    let level: Int

    var codingPath: [any CodingKey] { writer.codingPath(below: level) }

    mutating func encodeNil(forKey key: Key) throws { try writer.member(key, of: id) { writer.writeNull() } }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(bool: value) }
    }
    mutating func encode(_ value: String, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(string: value) }
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        try writer.member(key, of: id) { try writer.write(float: value) }
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        try writer.member(key, of: id) { try writer.write(float: value) }
    }
    mutating func encode(_ value: Int, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: Int8, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: Int16, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: Int32, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: Int64, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: UInt, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: UInt8, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: UInt16, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: UInt32, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        try writer.member(key, of: id) { writer.write(integer: value) }
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try writer.member(key, of: id) { try writer.encode(value) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        writer.aborted = true
        return KeyedEncodingContainer(JSONByteKeyedContainer<NestedKey>(writer: writer, id: -1, level: level))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        writer.aborted = true
        return JSONByteUnkeyedContainer(writer: writer, id: -1, level: level)
    }

    mutating func superEncoder() -> any Encoder {
        writer.aborted = true
        return JSONByteEncoder(writer: writer, serial: -1, level: level)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder()
    }
}

struct JSONByteUnkeyedContainer: UnkeyedEncodingContainer, JSONByteElements {
    let writer: JSONByteWriter
    let id: Int
    /// Where its value's container is among the open ones.
    let level: Int

    var codingPath: [any CodingKey] { writer.codingPath(below: level) }

    var count: Int { writer.count(of: id) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        writer.aborted = true
        return KeyedEncodingContainer(JSONByteKeyedContainer<NestedKey>(writer: writer, id: -1, level: level))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        writer.aborted = true
        return JSONByteUnkeyedContainer(writer: writer, id: -1, level: level)
    }

    mutating func superEncoder() -> any Encoder {
        writer.aborted = true
        return JSONByteEncoder(writer: writer, serial: -1, level: level)
    }
}

struct JSONByteSingleValueContainer: SingleValueEncodingContainer, JSONByteElements {
    let writer: JSONByteWriter
    let id: Int
    /// Where its value's container is among the open ones.
    let level: Int

    var codingPath: [any CodingKey] { writer.codingPath(below: level) }
}

/// The unkeyed and the single-value container write a value the same way: as the next element of
/// the container `id` (a single-value container takes one).
protocol JSONByteElements {
    var writer: JSONByteWriter { get }
    var id: Int { get }
}

extension JSONByteElements {
    mutating func encodeNil() throws { try writer.element(of: id) { writer.writeNull() } }
    mutating func encode(_ value: Bool) throws { try writer.element(of: id) { writer.write(bool: value) } }
    mutating func encode(_ value: String) throws { try writer.element(of: id) { writer.write(string: value) } }
    mutating func encode(_ value: Double) throws { try writer.element(of: id) { try writer.write(float: value) } }
    mutating func encode(_ value: Float) throws { try writer.element(of: id) { try writer.write(float: value) } }
    mutating func encode(_ value: Int) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: Int8) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: Int16) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: Int32) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: Int64) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: UInt) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: UInt8) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: UInt16) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: UInt32) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode(_ value: UInt64) throws { try writer.element(of: id) { writer.write(integer: value) } }
    mutating func encode<T: Encodable>(_ value: T) throws { try writer.element(of: id) { try writer.encode(value) } }
}
