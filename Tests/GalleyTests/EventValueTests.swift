import Foundation
import GalleyHost
import TestSupport
import Testing

@testable import Galley

/// A route's event handed to a handler in the host's process as values decodes exactly as its JSON
/// does, whatever the type asks for.
struct EventValueTests {
    typealias Mixed = LazyJSONDecoderTests.Mixed
    typealias Either = LazyJSONDecoderTests.Either

    /// Decoding the values and decoding their JSON give equal values, or errors with the same words
    /// (or both an error, for `words: false`: JSONDecoder names whichever wrong member of a
    /// dictionary it meets first, in the dictionary's order, which is not the same in every run).
    func same<Value: Decodable & Equatable>(_ type: Value.Type, _ value: EventValue, words: Bool = true) -> Bool {
        let fromJSON = Result { try PayloadCoding.decode(type, from: .json(Data(value.json()))) }
        let fromValues = Result { try PayloadCoding.decode(type, from: .values(value)) }
        switch (fromJSON, fromValues) {
        case (.success(let a), .success(let b)): return a == b
        case (.failure(let a), .failure(let b)): return !words || "\(a)" == "\(b)"
        default: return false
        }
    }

    func builder() throws -> HTTPEventBuilder {
        let route = RouteTable.Match(
            function: "hello",
            route: try Route(parsing: "GET /hello/{name}"),
            pathParameters: ["name": "Ada \"L\" é 😀", "b": "2"]
        )
        return HTTPEventBuilder(
            method: "GET",
            path: "/hello/Ada%20L",
            query: "x=1&x=2&y",
            headers: [("User-Agent", "curl/8"), ("X-A", "b"), ("x-a", "c"), ("Cookie", "a=1; b=2")],
            body: Array("{\"k\": \"é\"}".utf8),
            route: route,
            time: Date(timeIntervalSince1970: 1_764_561_600.125)
        )
    }

    @Test func aRouteEventsValuesAreItsJSON() throws {
        let builder = try builder()
        #expect(builder.values().json() == builder.encode())
    }

    @Test func aRouteEventIsDecodedFromItsValuesAlike() throws {
        let builder = try builder()
        let values = builder.values()
        let json = Data(builder.encode())
        let whole = try #require(EventValueDecoding.decode(APIGatewayV2Request.self, from: values), "gave up")
        #expect(whole == (try JSONDecoder().decode(APIGatewayV2Request.self, from: json)))
        #expect(whole.cookies == ["a=1", "b=2"])
        #expect(whole.headers["x-a"] == "b,c")
        let greeting = try #require(EventValueDecoding.decode(LazyJSONDecoderTests.Greeting.self, from: values))
        #expect(greeting == (try JSONDecoder().decode(LazyJSONDecoderTests.Greeting.self, from: json)))
        #expect(greeting.pathParameters?["name"] == "Ada \"L\" é 😀")
        #expect(same(APIGatewayV2Request.self, values))
        #expect(same([String: Either].self, values))
        #expect(same([String: String].self, values))
        #expect(same(Mixed.self, values))
    }

    @Test func whatIsNotPlainIsLeftToTheJSON() {
        let object = { (members: [(String, EventValue)]) in EventValue.object(members.map { .init($0.0, $0.1) }) }
        // A string where a number is wanted, a number out of range, a Float, an unknown case: the
        // values give up, and the JSON's answer (here an error) is the answer.
        for value in [
            object([("a", .string("1"))]), object([("g", .integer(128))]), object([("h", .integer(-1))]),
            object([("i", .string("angry"))]), object([("e", .integer(1))]), object([("c", .string("x"))]),
            object([("d", .object([.init("x", .array([.boolean(true), .integer(1)]))]))]),
        ] {
            #expect(EventValueDecoding.decode(Mixed.self, from: value) == nil, "\(value)")
            #expect(same(Mixed.self, value), "\(value)")
        }
        struct Measure: Decodable, Equatable { var x: Float }
        #expect(EventValueDecoding.decode(Measure.self, from: object([("x", .integer(1))])) == nil)
        #expect(same(Measure.self, object([("x", .integer(1))])))
        // A type that tries alternatives takes the branch it takes with the JSON.
        #expect(same([String: Either].self, object([("x", .string("s")), ("y", .integer(1)), ("z", .boolean(true))])))
    }

    @Test func anyValueDecodesAsItsJSONDoes() {
        var random = SplitMix(seed: 0x5EED_E7E2)
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "x"]
        let texts = ["", "happy", "sad", "1", "t\u{e9}\n\"q\"\\", "😀"]
        func value(_ depth: Int) -> EventValue {
            switch random.next() % (depth > 2 ? 3 : 5) {
            case 0: .string(texts[Int(random.next() % UInt64(texts.count))])
            case 1: .integer([0, 1, -1, 127, 128, -129, 1 << 40, .max, .min][Int(random.next() % 9)])
            case 2: .boolean(random.next() % 2 == 0)
            case 3: .array((0..<Int(random.next() % 4)).map { _ in value(depth + 1) })
            default:
                .object(
                    Array(
                        Set((0..<Int(random.next() % 5)).map { _ in names[Int(random.next() % UInt64(names.count))] })
                    )
                    .sorted().map { EventValue.Member($0, value(depth + 1)) }
                )
            }
        }
        var plain = 0
        for _ in 0..<2_000 {
            let event = value(0)
            #expect(same(Mixed.self, event, words: false), "\(event)")
            #expect(same([String: Either].self, event, words: false), "\(event)")
            #expect(same([String: String].self, event, words: false), "\(event)")
            #expect(same([String: [Int]].self, event, words: false), "\(event)")
            if EventValueDecoding.decode(Mixed.self, from: event) != nil { plain += 1 }
        }
        // Both paths are taken: the values decode on their own often, and give up often.
        #expect(plain > 50 && plain < 1_950, "\(plain)")
    }
}
