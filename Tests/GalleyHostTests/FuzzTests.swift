import Foundation
import Galley
import TestSupport
import Testing

@testable import GalleyHost

/// Standing fuzz tests for the parsers that take input from outside: the route matcher,
/// runtime.json decoding and the HTTP event builder (`JSONSyntaxTests` has the JSON check's).
/// Seeded, so a failure reproduces; `GALLEY_FUZZ_ITERATIONS=200000 swift test --filter FuzzTests`
/// runs longer.
struct FuzzTests {
    typealias Random = SplitMix

    static var iterations: Int {
        Int(ProcessInfo.processInfo.environment["GALLEY_FUZZ_ITERATIONS"] ?? "").map { $0 / 10 } ?? 2_000
    }

    static func pick<T>(_ values: [T], _ random: inout Random) -> T {
        values[Int(random.next() % UInt64(values.count))]
    }

    // MARK: - Route matcher

    @Test func theRouteMatcherNeverTrapsAndEveryMatchHolds() throws {
        var random = Random(seed: 0x2047E5)
        let words = ["a", "b", "users", "é", "%41", "x y", "2015-03-31", "functions"]
        let methods = ["GET", "POST", "ANY", "DELETE"]
        var matches = 0
        for _ in 0..<Self.iterations {
            // A random table of valid routes, one function each.
            var functions: [String: FunctionConfiguration] = [:]
            var shapes: Set<String> = []
            for index in 0..<Int(1 + random.next() % 6) {
                var text = "/"
                var names = 0
                let count = Int(random.next() % 4)
                for position in 0..<count {
                    if position > 0 { text += "/" }
                    switch random.next() % 5 {
                    case 0:
                        text += "{p\(names)}"
                        names += 1
                    case 1 where position == count - 1: text += "{rest+}"
                    default: text += Self.pick(words, &random).replacingOccurrences(of: " ", with: "-")
                    }
                }
                guard let route = try? Route(parsing: "\(Self.pick(methods, &random)) \(text)"),
                    shapes.insert(route.shape).inserted
                else { continue }
                var function = FunctionConfiguration(handler: "H")
                function.routes = [route]
                functions["f\(index)"] = function
            }
            let table = RouteTable(configuration: RuntimeConfiguration(functions: functions))
            // A random path: words, escapes, empty segments, stray bytes.
            var path = ""
            for _ in 0..<Int(random.next() % 5) {
                path +=
                    Self.pick(["/", "//", "/%", "/%zz", "/%2F", "/\u{0}", "/é"], &random)
                    + Self.pick(words + [""], &random)
            }
            let method = Self.pick(methods.filter { $0 != "ANY" } + ["PATCH"], &random)
            guard let match = table.match(method: method, path: path) else { continue }
            matches += 1
            #expect(match.route.method == method || match.route.method == "ANY", "\(method) \(path)")
            let pieces = path.split(separator: "/").map { PercentEncoding.decode($0) }
            var parameters = 0
            for (index, segment) in match.route.segments.enumerated() {
                switch segment {
                case .literal(let text):
                    #expect(index < pieces.count && pieces[index] == text, "\(path) \(match.route)")
                case .parameter(let name):
                    parameters += 1
                    #expect(match.pathParameters[name] == pieces[index])
                case .greedy(let name):
                    parameters += 1
                    #expect(match.pathParameters[name] == pieces[index...].joined(separator: "/"))
                }
            }
            #expect(match.pathParameters.count == parameters)
            if case .greedy = match.route.segments.last {
            } else {
                #expect(match.route.segments.count == pieces.count, "\(path) matched \(match.route)")
            }
        }
        #expect(matches > Self.iterations / 50, "the generator must reach the matcher: \(matches) matches")
    }

    // MARK: - runtime.json

    @Test func mutatedRuntimeJSONNeverTrapsAndIsRefusedInOneLine() throws {
        let valid = Array(
            #"""
            {"server": {"port": 9000, "invokeAPI": true, "requestTimeout": 30},
             "storage": {"path": ".galley"}, "queue": {"maxEvents": 10},
             "functions": {"hello": {"handler": "Hello", "timeout": 3, "memory": 128, "concurrency": 2,
                                     "routes": ["GET /hello/{name}"], "environment": {"A": "b"},
                                     "schedule": "rate(5 minutes)", "retries": 1}}}
            """#.utf8
        )
        var random = Random(seed: 0xC0_4F16)
        let interesting = Array(#"{}[]":,0123456789.-e "#.utf8) + [0x00, 0x0A, 0xC3, 0xFF]
        let fragments = [
            #""handler""#, #""routes""#, "1e400", "-1", "128.5", #""/_galley/x""#, #""..""#, "null", "[]",
        ].map { Array($0.utf8) }
        var refused = 0
        for _ in 0..<Self.iterations {
            var bytes = valid
            for _ in 0...(random.next() % 3) {
                let position = Int(random.next() % UInt64(bytes.count + 1))
                switch random.next() % 4 {
                case 0 where position < bytes.count: bytes[position] = Self.pick(interesting, &random)
                case 1: bytes.insert(contentsOf: Self.pick(fragments, &random), at: position)
                case 2 where position < bytes.count: bytes.remove(at: position)
                default: bytes.insert(Self.pick(interesting, &random), at: position)
                }
            }
            do {
                let configuration = try RuntimeConfiguration(json: Data(bytes), file: "runtime.json")
                // Whatever was accepted is within its documented ranges.
                for function in configuration.functions.values {
                    #expect(function.timeout > 0 && function.timeout <= 900)
                    #expect((128...10240).contains(function.memory))
                }
            } catch {
                refused += 1
                #expect(error.description.hasPrefix("runtime.json: "))
                #expect(!error.description.contains("\n"), "\(error.description)")
            }
        }
        #expect(refused > 0)
    }

    // MARK: - HTTP event builder

    @Test func theHTTPEventIsValidJSONAndCarriesEveryByte() throws {
        var random = Random(seed: 0xE7E27)
        let pieces = ["a", "\"", "\\", "\u{1}", "\n", "é", "😀", "%", "=", "&", ";", " ", "\u{7F}", "\u{2028}"]
        func text(_ random: inout Random, _ count: UInt64 = 6) -> String {
            (0..<Int(random.next() % count)).map { _ in Self.pick(pieces, &random) }.joined()
        }
        for _ in 0..<Self.iterations {
            let path = "/" + text(&random)
            let query = text(&random)
            let headers = (0..<Int(random.next() % 4)).map { _ in
                (name: Self.pick(["X-A", "x-a", "Cookie", "Content-Type", "X-\u{1}"], &random), value: text(&random))
            }
            let body: [UInt8]? =
                random.next() % 3 == 0 ? nil : (0..<Int(random.next() % 40)).map { _ in UInt8(random.next() & 0xFF) }
            let builder = HTTPEventBuilder(method: "POST", path: path, query: query, headers: headers, body: body)
            let bytes = builder.encode()
            #expect((try? JSONSyntax.validate(bytes)) != nil, "\(String(decoding: bytes, as: UTF8.self))")
            let event = try JSONDecoder().decode(APIGatewayV2Request.self, from: Data(bytes))
            #expect(event.rawPath == path)
            #expect(event.rawQueryString == query)
            if let body, !body.isEmpty { #expect(event.bodyData == Data(body)) }
            for header in headers where header.name.lowercased() != "cookie" {
                #expect(event.headers[header.name.lowercased()] != nil, "\(header.name)")
            }
            // The REST (1.0) event of the same request is valid JSON and decodes too.
            let rest = builder.encodeV1()
            #expect((try? JSONSyntax.validate(rest)) != nil, "\(String(decoding: rest, as: UTF8.self))")
            let restEvent = try JSONDecoder().decode(APIGatewayRequest.self, from: Data(rest))
            if let body, !body.isEmpty { #expect(restEvent.bodyData == Data(body)) }
            #expect(restEvent.multiValueHeaders?.values.reduce(0) { $0 + $1.count } ?? 0 == headers.count)
        }
    }
}
