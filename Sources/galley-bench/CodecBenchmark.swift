import Foundation
import Galley

/// What a Swift handler pays to read its event and write its result: Galley's direct encoder and
/// lazy decoder against Foundation's `JSONEncoder` (sorted keys) and `JSONDecoder`, in alternating
/// rounds of the same process.
struct CodecBenchmark {
    /// `Hello`'s event and result.
    struct Event: Decodable {
        var name: String?
        var pathParameters: [String: String]?
        var queryStringParameters: [String: String]?
    }

    struct Greeting: Encodable {
        var message: String
    }

    /// A result of every common kind of member.
    struct Order: Encodable {
        var id: Int
        var customer: String
        var items: [String]
        var total: Double
        var paid: Bool
        var tags: [String: String]
        var shipping: Greeting?
    }

    /// A route's event as the host writes it for `GET /hello/Ada`.
    static let routeEvent = Data(
        (#"{"version":"2.0","routeKey":"GET /hello/{name}","rawPath":"/hello/Ada","rawQueryString":"","#
            + #""headers":{"host":"127.0.0.1:8080","user-agent":"wrk","accept":"*/*","x-forwarded-for":"127.0.0.1","#
            + #""x-forwarded-port":"8080","x-forwarded-proto":"http"},"requestContext":{"accountId":"000000000000","#
            + #""apiId":"galley","domainName":"127.0.0.1","domainPrefix":"127","http":{"method":"GET","#
            + #""path":"/hello/Ada","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"wrk"},"#
            + #""requestId":"c0a8e1b2-3f4d-4e5f-8a9b-0c1d2e3f4a5b","routeKey":"GET /hello/{name}","stage":"$default","#
            + #""time":"30/Nov/2026:21:34:45 +0000","timeEpoch":1796074485000},"pathParameters":{"name":"Ada"},"#
            + #""isBase64Encoded":false}"#).utf8
    )

    let rounds = 5
    let iterations = 200_000

    func run() throws -> String {
        let plainEncoder = JSONEncoder()
        plainEncoder.outputFormatting = .sortedKeys
        let direct = DirectJSONEncoder(fallback: plainEncoder)
        let plainDecoder = JSONDecoder()
        let lazy = LazyJSONDecoder(fallback: plainDecoder)
        let greeting = Greeting(message: "Hello, Ada!")
        let order = Order(
            id: 1042,
            customer: "Ada Lovelace",
            items: ["engine", "cards", "gears"],
            total: 129.95,
            paid: true,
            tags: ["channel": "web", "region": "eu"],
            shipping: Greeting(message: "2 Analytical Way")
        )
        let invoke = Data(#"{"name": "Ada"}"#.utf8)
        var rows: [String] = []
        func row(_ label: String, _ foundation: () throws -> Int, _ galley: () throws -> Int) rethrows {
            let (plain, ours) = try measure(foundation, galley)
            let ratio = plain / ours
            rows.append(
                "| \(label) | \(Int(plain.rounded())) | \(Int(ours.rounded())) | **\(String(format: "%.2f", ratio))x** |"
            )
        }
        try row("result `{\"message\":\"Hello, Ada!\"}`", { try plainEncoder.encode(greeting).count }) {
            try direct.encode(greeting).count
        }
        try row("result of 7 members (array, dictionary, float, nested)", { try plainEncoder.encode(order).count }) {
            try direct.encode(order).count
        }
        try row("event `{\"name\": \"Ada\"}`", { try plainDecoder.decode(Event.self, from: invoke).name!.utf8.count }) {
            try lazy.decode(Event.self, from: invoke).name!.utf8.count
        }
        try row(
            "route event, \(Self.routeEvent.count) bytes",
            { try plainDecoder.decode(Event.self, from: Self.routeEvent).pathParameters!.count }
        ) { try lazy.decode(Event.self, from: Self.routeEvent).pathParameters!.count }
        return """
            ### A Swift handler's JSON: event in, result out

            `galley-bench codec`: one process, \(rounds) alternating rounds of \(iterations) operations each,
            the median round. Foundation's `JSONEncoder` (sorted keys, as Galley encodes results) and
            `JSONDecoder` against Galley's `DirectJSONEncoder` and `LazyJSONDecoder`, which give the same
            bytes and values (or defer to Foundation). Nanoseconds per operation; the ratio is how many
            times faster Galley's is.

            | operation | Foundation ns | Galley ns | speed-up |
            |---|---|---|---|
            \(rows.joined(separator: "\n"))

            """
    }

    /// Median nanoseconds per operation of each, measured in alternating rounds.
    private func measure(_ first: () throws -> Int, _ second: () throws -> Int) rethrows -> (Double, Double) {
        var sink = 0
        var a: [Double] = []
        var b: [Double] = []
        for _ in 0..<1000 {
            sink &+= try first()
            sink &+= try second()
        }
        func time(_ operation: () throws -> Int) rethrows -> Double {
            let start = ContinuousClock.now
            for _ in 0..<iterations { sink &+= try operation() }
            let elapsed = ContinuousClock.now - start
            return (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9)
                / Double(iterations)
        }
        for _ in 0..<rounds {
            a.append(try time(first))
            b.append(try time(second))
        }
        precondition(sink != 42)
        return (a.sorted()[rounds / 2], b.sorted()[rounds / 2])
    }
}
