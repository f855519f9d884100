import Foundation
import Testing

@testable import Galley

/// The direct result encoder writes exactly what JSONEncoder (compact, sorted keys) writes, or
/// leaves the value to it.
struct DirectJSONEncoderTests {
    struct Greeting: Encodable {
        var message: String
    }

    /// Every kind of member, in an order that is not the sorted one.
    struct Mixed: Encodable {
        enum Mood: String, Encodable { case happy, sad }
        var zeta: Int
        var alpha: String
        var list: [Int]
        var nested: Greeting?
        var none: Greeting?
        var ratio: Double
        var small: Float
        var flag: Bool
        var tags: [String: String]
        var mood: Mood
        var bytes: [UInt8]
        var wide: Wide
    }

    /// Every integer type, through the keyed container's own methods and as array elements.
    struct Wide: Encodable {
        var i8 = Int8.min
        var i16 = Int16.max
        var i32 = Int32.min
        var i64 = Int64.max
        var u = UInt.max
        var u8 = UInt8.max
        var u16 = UInt16.max
        var u32 = UInt32.max
        var u64 = UInt64.max
        var small: [Int16] = [-1, 0, 1]
        var large: [UInt64] = [0, .max]
        var optional: Int32? = nil
    }

    /// A JSON value of any shape.
    indirect enum Tree: Encodable {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        case null
        case array([Tree])
        case object([String: Tree])

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .array(let elements):
                var container = encoder.unkeyedContainer()
                for element in elements { try container.encode(element) }
            case .object(let members):
                try members.encode(to: encoder)
            default:
                var container = encoder.singleValueContainer()
                switch self {
                case .string(let text): try container.encode(text)
                case .int(let number): try container.encode(number)
                case .double(let number): try container.encode(number)
                case .bool(let flag): try container.encode(flag)
                default: try container.encodeNil()
                }
            }
        }
    }

    static func plain() -> JSONEncoder {
        .sortingKeys()
    }

    /// Both encoders' answers: the same bytes, or errors with the same words.
    func same<Value: Encodable>(_ value: Value) -> Bool {
        let plain = Result { try Self.plain().encode(value) }
        let direct = Result { try DirectJSONEncoder(fallback: Self.plain()).encode(value) }
        switch (plain, direct) {
        case (.success(let a), .success(let b)): return a == b
        case (.failure(let a), .failure(let b)): return "\(a)" == "\(b)"
        default: return false
        }
    }

    /// Written directly (not left to JSONEncoder), and byte for byte what JSONEncoder writes.
    func direct<Value: Encodable>(_ value: Value, _ comment: Comment? = nil) {
        let label = comment.map { "\($0.rawValue): " } ?? ""
        let bytes = DirectJSONEncoder.directly(value)
        #expect(bytes != nil, "\(label)left to JSONEncoder: \(value)")
        if let bytes {
            let expected = try? Self.plain().encode(value)
            #expect(
                Data(bytes) == expected,
                "\(label)\(String(decoding: bytes, as: UTF8.self)) ≠ \(expected.map { String(decoding: $0, as: UTF8.self) } ?? "an error")"
            )
        }
    }

    @Test func aHandlersResultIsWrittenDirectlyAndAlike() {
        direct(Greeting(message: "Hello, Ada!"))
        direct(
            Mixed(
                zeta: -42,
                alpha: "a/b\"c\\d\n\t\u{1}\u{7F}é😀",
                list: [1, 2, 3],
                nested: Greeting(message: "x"),
                none: nil,
                ratio: 1.5,
                small: 0.1,
                flag: true,
                tags: ["b": "1", "a": "2", "é": "3", "Z": "4"],
                mood: .sad,
                bytes: [0, 255],
                wide: Wide()
            )
        )
        direct("a top-level string")
        direct(42)
        direct([true, false])
        direct([String: Int]())
        direct([Int]())
        direct(Greeting?.none)
        direct([[1], [], [2, 3]])
    }

    @Test func everyASCIICharacterIsEscapedAlike() {
        for byte in UInt8(0)...UInt8(127) {
            let text = "<\(Character(Unicode.Scalar(byte)))>"
            direct(text, "byte \(byte)")
            direct([text: text], "byte \(byte) in a key")
        }
    }

    @Test func numbersAreWrittenAlike() {
        let doubles: [Double] = [
            0, -0.0, 1, -1, 0.1, 1.5, 1e20, 1e21, 1e-7, 123456789012345680, .leastNonzeroMagnitude,
            .greatestFiniteMagnitude,
            .leastNormalMagnitude, 3.141592653589793, 100, 2.5e-5, -1e100,
        ]
        for number in doubles { direct(number, "\(number)") }
        for number in [Float(0.1), 1e10, -3.4028235e38, .leastNormalMagnitude, 16_777_216] {
            direct(number, "\(number)")
        }
        for number in [Int.min, Int.max, 0, -1] { direct(number) }
        direct(UInt64.max)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            direct(Double(bitPattern: random.next() & 0x7FEF_FFFF_FFFF_FFFF))
            direct(Double.random(in: -1e6...1e6, using: &random))
            direct(Float.random(in: -1e6...1e6, using: &random))
        }
    }

    @Test func keysAreSortedByTheirBytesAndRepeatedKeysAreLeftToJSONEncoder() {
        direct(["b": 1, "a": 2, "B": 3, "á": 4, "a\u{0}": 5, "": 6, "10": 7, "9": 8])
        direct([3: "c", 1: "a", 20: "b"])

        struct Twice: Encodable {
            enum CodingKeys: CodingKey { case key }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(1, forKey: .key)
                try container.encode(2, forKey: .key)
            }
        }
        #expect(DirectJSONEncoder.directly(Twice()) == nil)
        #expect(same(Twice()))
    }

    /// What JSONEncoder writes its own way, or refuses, or what a value does oddly, is JSONEncoder's.
    @Test func whatIsNotPlainIsLeftToJSONEncoder() {
        struct Dated: Encodable {
            var when = Date(timeIntervalSince1970: 1_000)
            var data = Data([1, 2, 3])
            var url = URL(string: "https://example.com/a b")
            var amount = Decimal(string: "12.50")!
        }
        struct Nested: Encodable {
            enum CodingKeys: CodingKey { case inner, list }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                var inner = container.nestedContainer(keyedBy: CodingKeys.self, forKey: .inner)
                try inner.encode(1, forKey: .list)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                try list.encode("x")
            }
        }
        struct Super: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try 1.encode(to: container.superEncoder())
            }
        }
        struct TwoContainers: Encodable {
            enum CodingKeys: CodingKey { case a, b }
            func encode(to encoder: any Encoder) throws {
                var first = encoder.container(keyedBy: CodingKeys.self)
                try first.encode(1, forKey: .a)
                var second = encoder.container(keyedBy: CodingKeys.self)
                try second.encode(2, forKey: .b)
            }
        }
        struct Nothing: Encodable {
            func encode(to encoder: any Encoder) throws {}
        }
        struct CatchesItsError: Encodable {
            enum CodingKeys: CodingKey { case when, n }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try? container.encode(Double.nan, forKey: .when)
                try container.encode(1, forKey: .n)
            }
        }
        struct Throws: Encodable {
            func encode(to encoder: any Encoder) throws {
                throw EncodingError.invalidValue(1, .init(codingPath: encoder.codingPath, debugDescription: "no"))
            }
        }
        func left<Value: Encodable>(_ value: Value, _ comment: Comment) {
            #expect(DirectJSONEncoder.directly(value) == nil, comment)
            #expect(same(value), comment)
        }
        left(Dated(), "Date, Data, URL, Decimal")
        left([Date(timeIntervalSince1970: 0)], "a Date in an array")
        left(Double.nan, "not a number")
        left(["x": -Double.infinity], "an infinity")
        left(Nested(), "nested containers")
        left(Super(), "a super encoder")
        left(TwoContainers(), "two containers")
        left(Nothing(), "nothing encoded")
        left(["k": Nothing()], "nothing encoded, nested")
        left(CatchesItsError(), "an error caught by the value")
        left(Throws(), "the value's own error")
        left(Int128(1) << 100, "a 128-bit integer")
        left(String(repeating: "a", count: 70_000), "a string over 64 KiB")
        left([String](repeating: "0123456789", count: 10_000), "a result over 64 KiB")
    }

    /// What a value keeps of its encoding past its own `encode(to:)`.
    final class Keeper: @unchecked Sendable {
        var container: (any UnkeyedEncodingContainer)?
        var encoder: (any Encoder)?
    }

    /// A container kept past its value and written to later: left to JSONEncoder.
    @Test func aContainerWrittenToAfterItsValueIsLeftToJSONEncoder() {
        struct Inner: Encodable {
            let keeper: Keeper
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try container.encode(1)
                keeper.container = container
            }
        }
        struct Outer: Encodable {
            let keeper = Keeper()
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try container.encode(Inner(keeper: keeper))
                try keeper.container?.encode(2)
                try container.encode(3)
            }
        }
        #expect(DirectJSONEncoder.directly(Outer()) == nil)
    }

    /// An encoder kept past its value and asked for a container while the next value is encoded:
    /// that container is the first value's, not the second's, so it is left to JSONEncoder.
    @Test func anEncoderUsedAfterItsValueIsLeftToJSONEncoder() {
        struct First: Encodable {
            let keeper: Keeper
            func encode(to encoder: any Encoder) throws {
                keeper.encoder = encoder
                var container = encoder.singleValueContainer()
                try container.encode(1)
            }
        }
        struct Second: Encodable {
            let keeper: Keeper
            func encode(to encoder: any Encoder) throws {
                var container = keeper.encoder!.unkeyedContainer()
                try container.encode(2)
            }
        }
        struct Pair: Encodable {
            let keeper = Keeper()
            func encode(to encoder: any Encoder) throws {
                var container = encoder.unkeyedContainer()
                try container.encode(First(keeper: keeper))
                try container.encode(Second(keeper: keeper))
            }
        }
        #expect(DirectJSONEncoder.directly(Pair()) == nil)
    }

    /// The coding path a value sees is the one JSONEncoder gives it.
    @Test func theCodingPathIsJSONEncodersPath() throws {
        final class Paths: @unchecked Sendable {
            var seen: [String] = []
        }
        struct Leaf: Encodable {
            let paths: Paths
            func encode(to encoder: any Encoder) throws {
                paths.seen.append(encoder.codingPath.map(\.stringValue).joined(separator: "."))
                var container = encoder.singleValueContainer()
                paths.seen.append(container.codingPath.map(\.stringValue).joined(separator: "."))
                try container.encode("leaf")
            }
        }
        struct Root: Encodable {
            let paths: Paths
            enum CodingKeys: CodingKey { case a, b }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(Leaf(paths: paths), forKey: .a)
                try container.encode([["x": Leaf(paths: paths)]], forKey: .b)
                paths.seen.append(container.codingPath.map(\.stringValue).joined(separator: "."))
            }
        }
        let plain = Paths()
        let direct = Paths()
        _ = try Self.plain().encode(Root(paths: plain))
        #expect(DirectJSONEncoder.directly(Root(paths: direct)) != nil)
        #expect(direct.seen == plain.seen)
        #expect(plain.seen.contains("b.Index 0.x"))
    }

    /// Random values of any shape: the same bytes.
    @Test func randomValuesAreWrittenAlike() {
        var random = SystemRandomNumberGenerator()
        let texts = ["", "plain", "t\u{e9} \"q\" \\ / \n", "😀 é", "\u{0}\u{1f}", "a/b"]
        func tree(_ depth: Int) -> Tree {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &random) {
            case 0: return .string(texts.randomElement(using: &random)!)
            case 1: return .int(Int.random(in: Int.min...Int.max, using: &random))
            case 2: return .double(Double.random(in: -1e9...1e9, using: &random))
            case 3: return .bool(Bool.random(using: &random))
            case 4: return .null
            case 5: return .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in tree(depth + 1) })
            default:
                var members: [String: Tree] = [:]
                for _ in 0..<Int.random(in: 0..<6, using: &random) {
                    members[texts.randomElement(using: &random)! + String(Int.random(in: 0..<20, using: &random))] =
                        tree(depth + 1)
                }
                return .object(members)
            }
        }
        for _ in 0..<2000 { direct(tree(0)) }
    }
}
