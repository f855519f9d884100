import Foundation
import GalleyHost
import Testing

@testable import Galley

/// The lazy event decoder gives what JSONDecoder gives, whatever the document and the type.
struct LazyJSONDecoderTests {
    struct Greeting: Decodable, Equatable {
        var name: String?
        var pathParameters: [String: String]?
        var queryStringParameters: [String: String]?
    }

    struct Mixed: Decodable, Equatable {
        enum Mood: String, Decodable { case happy, sad }
        var a: Int?
        var b: Double?
        var c: [Int]?
        var d: [String: [Bool]]?
        var e: String?
        var f: [Mixed]?
        var g: Int8?
        var h: UInt?
        var i: Mood?
        var j: [String?]?
    }

    /// Tries alternatives, as many hand-written Decodables do.
    enum Either: Decodable, Equatable {
        case number(Int64)
        case text(String)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                self = .number(number)
            } else if let text = try? container.decode(String.self) {
                self = .text(text)
            } else {
                self = .other
            }
        }
    }

    /// Both decoders' answers: equal values, or both an error with the same words.
    func same<Value: Decodable & Equatable>(_ type: Value.Type, _ json: String) -> Bool {
        let data = Data(json.utf8)
        let plain = Result { try JSONDecoder().decode(type, from: data) }
        let lazy = Result { try LazyJSONDecoder(fallback: JSONDecoder()).decode(type, from: data) }
        switch (plain, lazy) {
        case (.success(let a), .success(let b)): return a == b
        case (.failure(let a), .failure(let b)): return "\(a)" == "\(b)"
        default: return false
        }
    }

    @Test func aRouteEventIsReadLazilyAndAlike() throws {
        let route = RouteTable.Match(
            function: "hello",
            route: try Route(parsing: "GET /hello/{name}"),
            pathParameters: ["name": "Ada \"L\" é 😀"]
        )
        let builder = HTTPEventBuilder(
            method: "GET",
            path: "/hello/Ada",
            query: "x=1&x=2",
            headers: [("User-Agent", "curl/8"), ("X-A", "b")],
            route: route
        )
        let data = Data(builder.encode())
        let lazy = try #require(LazyJSONDecoder.lazily(Greeting.self, from: data), "the lazy path gave up")
        #expect(lazy == (try JSONDecoder().decode(Greeting.self, from: data)))
        #expect(lazy.pathParameters?["name"] == "Ada \"L\" é 😀")
        let whole = try #require(LazyJSONDecoder.lazily(APIGatewayV2Request.self, from: data))
        #expect(whole == (try JSONDecoder().decode(APIGatewayV2Request.self, from: data)))
    }

    @Test(arguments: [
        #"{"a": 1, "b": 2.5, "c": [1, 2, 3], "d": {"x": [true, false]}, "e": "t\u00e9\n\"q\"\\", "g": -128, "h": 0}"#,
        #"{"a": 1.0}"#, #"{"a": 1e2}"#, #"{"a": -0}"#, #"{"a": 9223372036854775808}"#, #"{"g": 128}"#,
        #"{"h": -1}"#, #"{"b": 1e400}"#, #"{"b": 0.1}"#, #"{"b": 1}"#, #"{"b": -0.0}"#,
        #"{"b": 123456789012345678901234567890}"#,
        #"{"a": "1"}"#, #"{"e": 1}"#, #"{"a": null, "e": null}"#, #"{"c": [1, null]}"#, #"{"i": "happy"}"#,
        #"{"i": "angry"}"#, #"{"j": ["a", null, "b"]}"#, #"{"a": 1, "a": 2}"#,
        #"{"f": [{"a": 1}, {"f": [{"e": "x"}]}]}"#,
        #"{"e": "\ud83d\ude00"}"#, #"{"e": "\ud83d"}"#, #"{"e": "\u0000"}"#, #"{"e": "a\/b"}"#, #"{"\u0061": 5}"#,
        #"{"a": 1,}"#, #"{"a": 1} x"#, #"[1]"#, #""text""#, #"{"a": 01}"#, #"{"a": tru}"#, #"{"a": 1"#, "",
        #"  {"c": []}  "#, #"{"d": {}}"#, #"{"unknown": {"deep": [1, {"x": "\u12"}]}}"#, #"{"unknown": [1, 2,]}"#,
        #"{"x": "1", "y": "t\u00e9"}"#, #"{"x": "1", "x": "2"}"#, #"{"\u0078": "1", "x": "2"}"#, #"{"x": "1", "y": 2}"#,
        #"{"x": "\ud83d"}"#, #"{}"#,
    ])
    func sameAsJSONDecoder(json: String) {
        #expect(same(Mixed.self, json), "\(json)")
        #expect(same([String: Either].self, json), "\(json)")
        #expect(same([String: String].self, json), "\(json)")
    }

    @Test func absentAndNullOptionalsAreReadLazily() throws {
        for json in [#"{}"#, #"{"a": null, "e": null, "d": null}"#, #"{"e": "x", "i": null, "j": null}"#] {
            let data = Data(json.utf8)
            let lazy = try #require(LazyJSONDecoder.lazily(Mixed.self, from: data), "\(json) was not read lazily")
            #expect(lazy == (try JSONDecoder().decode(Mixed.self, from: data)), "\(json)")
        }
    }

    @Test func stringDictionariesAreReadLazily() throws {
        let json = Data(#"{"x": "1", "y": "t\u00e9", "z": ""}"#.utf8)
        let read = try #require(LazyJSONDecoder.lazily([String: String].self, from: json))
        #expect(read == ["x": "1", "y": "té", "z": ""])
        // A repeated key, even written differently, is JSONDecoder's to settle.
        #expect(LazyJSONDecoder.lazily([String: String].self, from: Data(#"{"\u0078": "1", "x": "2"}"#.utf8)) == nil)
    }

    @Test func alternativesTakeTheSameBranch() {
        for json in [#"{"x": 1}"#, #"{"x": 1.5}"#, #"{"x": "s"}"#, #"{"x": true}"#, #"{"x": null}"#, #"{"x": [1]}"#] {
            #expect(same([String: Either].self, json), "\(json)")
            #expect(same([String: Either?].self, json), "\(json)")
        }
    }

    @Test func everySampleEventDecodesAlike() throws {
        func check<Event: Decodable & Equatable>(_ type: Event.Type, _ value: JSONValue) throws {
            let data = try JSONEncoder().encode(value)
            let lazy = try #require(LazyJSONDecoder.lazily(type, from: data), "\(type) was not read lazily")
            #expect(lazy == (try JSONDecoder().decode(type, from: data)))
        }
        try check(S3Event.self, SampleEvents.s3())
        try check(SQSEvent.self, SampleEvents.sqs(bodies: ["a", "b"]))
        try check(SNSEvent.self, SampleEvents.sns())
        try check(DynamoDBEvent.self, SampleEvents.dynamoDB(eventName: "MODIFY"))
        try check(ScheduledEvent.self, SampleEvents.schedule())
        try check(APIGatewayRequest.self, SampleEvents.apiGateway(target: "/x?a=1&a=2", body: "{}"))
        try check(ALBTargetGroupRequest.self, SampleEvents.alb())
        try check(CognitoUserPoolEvent.self, SampleEvents.cognito(trigger: "define-auth-challenge"))
        try check(CloudWatchLogsEvent.self, try SampleEvents.cloudWatchLogs())
        // KinesisEvent has a Double timestamp: compared too.
        try check(KinesisEvent.self, SampleEvents.kinesis(data: ["x", "y"]))
    }

    /// Strings are scanned eight bytes at a time: whatever ends a string, starts an escape or is
    /// not allowed in one is found at every offset.
    @Test func everyStopInAStringIsFoundAtEveryOffset() {
        let stops = [#"\""#, #"\\"#, #"\n"#, #"\u00e9"#, "\u{01}", "\u{1F}", "\u{7F}", "é", "\"", " "]
        for length in 0..<20 {
            for offset in 0...length {
                for stop in stops {
                    let text =
                        String(repeating: "a", count: offset) + stop + String(repeating: "b", count: length - offset)
                    let json = #"{"e": "\#(text)", "x": "\#(text)"}"#
                    #expect(same(Mixed.self, json), "\(text.debugDescription)")
                    // What JSON allows in a string is read lazily, not left to JSONDecoder.
                    if !["\u{01}", "\u{1F}", "\""].contains(stop) {
                        #expect(LazyJSONDecoder.lazily(Mixed.self, from: Data(json.utf8)) != nil, "\(json)")
                    }
                }
            }
        }
    }

    /// The scan of a string jumps to the first byte of eight that may end it: that byte must be
    /// exact whatever follows it (a flag above it may be a borrow's).
    @Test func theFirstStopOfEightBytesIsExact() {
        var random = SystemRandomNumberGenerator()
        let plain = (UInt8(0x20)...0xFF).filter { $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        #expect(Document.stringStops(UInt64(littleEndian: 0x6162_6364_6566_6768)) == 0)
        for position in 0..<8 {
            for stop: UInt8 in [UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x00, 0x01, 0x0A, 0x1F] {
                for _ in 0..<200 {
                    var bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &random) }
                    for index in 0..<position { bytes[index] = plain.randomElement(using: &random)! }
                    bytes[position] = stop
                    let word = bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                    #expect(Document.stringStops(word).trailingZeroBitCount / 8 == position, "\(bytes)")
                }
            }
        }
    }

    /// Random documents, random types: never a different answer.
    @Test func randomDocumentsDecodeAlike() {
        var random = SystemRandomNumberGenerator()
        let pieces = [
            "\"a\"", "\"e\"", "\"f\"", "\"x\"", "1", "-2", "3.5", "1e3", "true", "false", "null", "\"s\\u00e9\"",
            "\"q\\\"\"", "[]", "{}", "\"\\ud83d\\ude00\"", "\"happy\"",
        ]
        func value(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 2 ? 1 : 4), using: &random) {
            case 1:
                return "["
                    + (0..<Int.random(in: 0..<4, using: &random)).map { _ in value(depth + 1) }.joined(separator: ",")
                    + "]"
            case 2:
                let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "x"]
                return "{"
                    + (0..<Int.random(in: 0..<5, using: &random)).map { _ in
                        "\"\(keys.randomElement(using: &random)!)\": \(value(depth + 1))"
                    }.joined(separator: ", ") + "}"
            default: return pieces.randomElement(using: &random)!
            }
        }
        for _ in 0..<2000 {
            let json = "{" + ["a", "e", "x", "c"].map { "\"\($0)\": \(value(1))" }.joined(separator: ",") + "}"
            #expect(same(Mixed.self, json), "\(json)")
            #expect(same([String: Either].self, json), "\(json)")
        }
        // Documents of Mixed's own shape, with unknown members of any shape: read lazily, and alike.
        let texts = ["\"\"", "\"plain\"", "\"t\\u00e9 \\\"q\\\" \\\\ \\n\"", "\"\\ud83d\\ude00 é\""]
        let numbers = ["0", "1.5", "-2.25e3", "1e-7", "42", "0.1", "-0.0", "12345678.875"]
        var lazilyRead = 0
        for _ in 0..<1000 {
            let ints = (0..<Int.random(in: 0..<4, using: &random)).map { _ in
                String(Int.random(in: -999...999, using: &random))
            }
            var members = [
                "\"a\": \(Int.random(in: Int.min...Int.max, using: &random))",
                "\"b\": \(numbers.randomElement(using: &random)!)",
                "\"c\": [\(ints.joined(separator: ","))]",
                "\"e\": \(texts.randomElement(using: &random)!)",
                "\"g\": \(Int.random(in: -128...127, using: &random))",
                "\"h\": \(UInt.random(in: 0...UInt.max, using: &random))",
                "\"i\": \(Bool.random(using: &random) ? "\"happy\"" : "\"sad\"")",
                "\"j\": [\(texts.randomElement(using: &random)!), null]",
                "\"unknown\": \(value(1))",
            ]
            members.shuffle(using: &random)
            let json = "{" + members.joined(separator: ", ") + "}"
            #expect(same(Mixed.self, json), "\(json)")
            if LazyJSONDecoder.lazily(Mixed.self, from: Data(json.utf8)) != nil { lazilyRead += 1 }
        }
        // A type that probes with `try?` always defers to JSONDecoder; one whose fields match is read lazily.
        #expect(lazilyRead == 1000, "the lazy path should read every well-typed document, read \(lazilyRead)")
    }
}
