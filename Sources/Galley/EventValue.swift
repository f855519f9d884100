#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An event held as values instead of JSON text: what the host builds for a route's request when
/// the route's function runs in the host's own process (`"isolation": "inline"`). Its handler
/// decodes the values directly, with no JSON written and read again between the two; everything
/// else gets ``json()``, the same event as text.
package enum EventValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case boolean(Bool)
    case array([EventValue])
    /// Members in the order they are written, no name twice.
    case object([Member])

    package struct Member: Sendable, Equatable {
        package var name: String
        package var value: EventValue

        @inlinable package init(_ name: String, _ value: EventValue) {
            self.name = name
            self.value = value
        }
    }

    /// The event as compact JSON, members in order.
    package func json() -> [UInt8] {
        var json = JSONBytes(capacity: 1024)
        write(to: &json)
        return json.bytes
    }

    private func write(to json: inout JSONBytes) {
        switch self {
        case .string(let text): json.string(text)
        case .integer(let number): json.number(number)
        case .boolean(let value): json.raw(value ? "true" : "false")
        case .array(let elements):
            json.raw("[")
            for (index, element) in elements.enumerated() {
                if index > 0 { json.raw(",") }
                element.write(to: &json)
            }
            json.raw("]")
        case .object(let members):
            json.raw("{")
            for (index, member) in members.enumerated() {
                if index > 0 { json.raw(",") }
                json.string(member.name)
                json.raw(":")
                member.value.write(to: &json)
            }
            json.raw("}")
        }
    }
}

/// Decodes an ``EventValue`` as `JSONDecoder` decodes its ``EventValue/json()``, or gives up
/// (`nil`) and leaves it to the JSON: on anything not plainly supported (a `Float`, `Data`, `Date`,
/// `URL` or `Decimal`, a super decoder, a number out of a type's range) and on any decoding error,
/// even one the type catches, exactly as ``LazyJSONDecoder`` does. So errors keep `JSONDecoder`'s
/// words, and a type that tries alternatives takes the branch it takes there.
enum EventValueDecoding {
    static func decode<Value: Decodable>(_ type: Value.Type, from value: EventValue) -> Value? {
        let session = EventValueSession()
        guard let decoded = try? session.decode(type, value, path: []), !session.aborted else { return nil }
        return decoded
    }
}

/// Why the values gave up; never seen by callers.
struct EventValueUnsupported: Error {}

/// One decoding: whether it gave up, and the values being decoded.
final class EventValueSession {
    var aborted = false
    /// The types being decoded, with the depth of each: a type whose `init(from:)` asks a
    /// single-value container for itself again gives up instead of recursing.
    private var inProgress: [(depth: Int, type: ObjectIdentifier)] = []

    func abort() -> EventValueUnsupported {
        aborted = true
        return EventValueUnsupported()
    }

    func decode<Value: Decodable>(_ type: Value.Type, _ value: EventValue, path: [any CodingKey]) throws -> Value {
        if isJSONDecodersOwn(Value.self) { throw abort() }
        // Compared by metatype: a cast per case costs more than the decoding.
        if Value.self == String.self {
            guard case .string(let text) = value else { throw abort() }
            return text as! Value
        }
        if Value.self == Bool.self {
            guard case .boolean(let flag) = value else { throw abort() }
            return flag as! Value
        }
        if Value.self == [String: String].self { return try strings(value) as! Value }
        if Value.self == Int.self { return try integer(value, as: Int.self) as! Value }
        if Value.self == Int64.self { return try integer(value, as: Int64.self) as! Value }
        if Value.self == Double.self {
            // What reading the integer's digits as a Double gives: the nearest Double.
            guard case .integer(let number) = value else { throw abort() }
            return Double(number) as! Value
        }
        if Value.self == Int32.self { return try integer(value, as: Int32.self) as! Value }
        if Value.self == UInt.self { return try integer(value, as: UInt.self) as! Value }
        if Value.self == UInt64.self { return try integer(value, as: UInt64.self) as! Value }
        if Value.self == Int8.self { return try integer(value, as: Int8.self) as! Value }
        if Value.self == Int16.self { return try integer(value, as: Int16.self) as! Value }
        if Value.self == UInt8.self { return try integer(value, as: UInt8.self) as! Value }
        if Value.self == UInt16.self { return try integer(value, as: UInt16.self) as! Value }
        if Value.self == UInt32.self { return try integer(value, as: UInt32.self) as! Value }
        let key = (depth: path.count, type: ObjectIdentifier(Value.self))
        guard !inProgress.contains(where: { $0 == key }) else { throw abort() }
        inProgress.append(key)
        defer { inProgress.removeLast() }
        do {
            return try Value(from: EventValueDecoder(value: value, session: self, codingPath: path))
        } catch {
            // An error the type throws itself, too: JSONDecoder's words are the answer.
            throw abort()
        }
    }

    private func integer<Number: FixedWidthInteger>(_ value: EventValue, as type: Number.Type) throws -> Number {
        guard case .integer(let number) = value, let exact = Number(exactly: number) else { throw abort() }
        return exact
    }

    /// An API Gateway event's parameters and headers: read directly, without a keyed container.
    private func strings(_ value: EventValue) throws -> [String: String] {
        guard case .object(let members) = value else { throw abort() }
        var dictionary: [String: String] = [:]
        dictionary.reserveCapacity(members.count)
        for member in members {
            guard case .string(let text) = member.value else { throw abort() }
            dictionary[member.name] = text
        }
        return dictionary
    }
}

/// A value, as a `Decoder`.
struct EventValueDecoder: Decoder {
    let value: EventValue
    let session: EventValueSession
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw session.abort() }
        return KeyedDecodingContainer(
            EventValueKeyedContainer<Key>(members: members, session: session, codingPath: codingPath)
        )
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw session.abort() }
        return EventValueUnkeyedContainer(elements: elements, session: session, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        EventValueSingleContainer(value: value, session: session, codingPath: codingPath)
    }
}

struct EventValueKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [EventValue.Member]
    let session: EventValueSession
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.name) } }

    private func value(for key: Key) -> EventValue? {
        let name = key.stringValue
        return members.first { $0.name == name }?.value
    }

    private func required(_ key: Key) throws -> EventValue {
        guard let value = value(for: key) else { throw session.abort() }
        return value
    }

    func contains(_ key: Key) -> Bool {
        value(for: key) != nil
    }

    // No value is null: the event leaves out what it does not have.
    func decodeNil(forKey key: Key) throws -> Bool {
        _ = try required(key)
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try session.decode(type, try required(key), path: codingPath + [key])
    }

    // An optional member in one look-up, where the protocol's default takes three.
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = value(for: key) else { return nil }
        return try session.decode(type, value, path: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try EventValueDecoder(value: try required(key), session: session, codingPath: codingPath + [key])
            .container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try EventValueDecoder(value: try required(key), session: session, codingPath: codingPath + [key])
            .unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        throw session.abort()
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        throw session.abort()
    }
}

struct EventValueUnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [EventValue]
    let session: EventValueSession
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(elements: [EventValue], session: EventValueSession, codingPath: [any CodingKey]) {
        self.elements = elements
        self.session = session
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private func current() throws -> EventValue {
        guard currentIndex < elements.count else { throw session.abort() }
        return elements[currentIndex]
    }

    private var path: [any CodingKey] { codingPath + [JSONIndexKey(intValue: currentIndex)] }

    mutating func decodeNil() throws -> Bool {
        _ = try current()
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try session.decode(type, try current(), path: path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try EventValueDecoder(value: try current(), session: session, codingPath: path)
            .container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try EventValueDecoder(value: try current(), session: session, codingPath: path)
            .unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        throw session.abort()
    }
}

struct EventValueSingleContainer: SingleValueDecodingContainer {
    let value: EventValue
    let session: EventValueSession
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try session.decode(type, value, path: codingPath)
    }
}
