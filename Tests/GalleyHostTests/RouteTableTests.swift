import Foundation
import Galley
import Testing

@testable import GalleyHost

struct RouteTableTests {
    func table(_ routes: [String: [String]]) throws -> RouteTable {
        var functions: [String: FunctionConfiguration] = [:]
        for (name, texts) in routes {
            var function = FunctionConfiguration(handler: "Hello")
            function.routes = try texts.map { try Route(parsing: $0) }
            functions[name] = function
        }
        return RouteTable(configuration: RuntimeConfiguration(functions: functions))
    }

    @Test func parametersAreExtractedAndDecoded() throws {
        let routes = try table(["hello": ["GET /hello/{name}"]])
        let match = try #require(routes.match(method: "GET", path: "/hello/Ada%20L"))
        #expect(match.function == "hello")
        #expect(match.pathParameters == ["name": "Ada L"])
        #expect(routes.match(method: "POST", path: "/hello/Ada") == nil)
        #expect(routes.match(method: "GET", path: "/hello") == nil)
        #expect(routes.match(method: "GET", path: "/hello/a/b") == nil)
    }

    @Test func aLiteralSegmentMatchesItsPercentEncodedSpelling() throws {
        let routes = try table(["cafe": ["GET /café/menu"], "plain": ["GET /cafe/menu"]])
        #expect(routes.match(method: "GET", path: "/caf%C3%A9/menu")?.function == "cafe")
        #expect(routes.match(method: "GET", path: "/%63afe/m%65nu")?.function == "plain")
        #expect(routes.match(method: "GET", path: "/cafe/menu")?.function == "plain")
        #expect(routes.match(method: "GET", path: "/cafe/men") == nil)
        #expect(routes.match(method: "GET", path: "/Cafe/menu") == nil)
        // A literal is compared with the decoded piece: its own `%` is a character, not an escape.
        let percent = try table(["percent": ["GET /x%41"]])
        #expect(percent.match(method: "GET", path: "/x%41") == nil)
        #expect(percent.match(method: "GET", path: "/x%2541")?.function == "percent")
    }

    @Test func literalBeatsParameterBeatsGreedy() throws {
        let routes = try table([
            "literal": ["GET /files/readme"],
            "param": ["GET /files/{name}"],
            "greedy": ["ANY /files/{proxy+}"],
        ])
        #expect(routes.match(method: "GET", path: "/files/readme")?.function == "literal")
        #expect(routes.match(method: "GET", path: "/files/other")?.function == "param")
        let deep = try #require(routes.match(method: "GET", path: "/files/a/b/c"))
        #expect(deep.function == "greedy")
        #expect(deep.pathParameters == ["proxy": "a/b/c"])
        #expect(routes.match(method: "DELETE", path: "/files/x")?.function == "greedy")
    }

    @Test func moreSpecificSegmentsBeatAGreedyTailAndTheKeyIsTheRoutes() throws {
        let routes = try table(["greedy": ["GET /a/{rest+}"], "pair": ["GET /a/{x}/{y}"], "one": ["ANY /a/{x}"]])
        let pair = try #require(routes.match(method: "GET", path: "/a/1/2"))
        #expect(pair.function == "pair")
        #expect(pair.pathParameters == ["x": "1", "y": "2"])
        #expect(pair.routeKey == "GET /a/{x}/{y}")
        // {rest+} scores 0 where {x} scores 1: the parameter wins even with ANY against GET.
        #expect(routes.match(method: "GET", path: "/a/1")?.function == "one")
        #expect(routes.match(method: "GET", path: "/a/1/2/3")?.routeKey == "GET /a/{rest+}")
        #expect(routes.match(method: "GET", path: "/b") == nil)
    }

    @Test(arguments: [
        "", ".", "..a", ".a.b", "a.b", "a", "a..b", "a.", "[::1]:80", ":80", "host:80", "é.ü",
        "api.example-with-a-long-name.com:8443",
    ])
    func theFirstPieceOfANameIsWhatSplitGivesFirst(text: String) {
        for separator in [UInt8(ascii: "."), UInt8(ascii: ":")] {
            let expected = text.split(separator: Character(Unicode.Scalar(separator))).first
            #expect(HTTPEventBuilder.firstPiece(of: text, separator: separator) == expected, "\(separator)")
        }
    }

    @Test(arguments: [
        ("/a?b?c", "/a", "b?c"), ("/a", "/a", ""), ("/a?", "/a", ""), ("?x", "", "x"), ("/é?ü=1", "/é", "ü=1"),
        // Past 15 bytes a string is not stored inline: its bytes are searched in its buffer.
        ("/a/long/path/é/ü?q=1&r=2?", "/a/long/path/é/ü", "q=1&r=2?"),
        ("/a/long/path/with/no/query", "/a/long/path/with/no/query", ""),
    ])
    func aTargetSplitsAtItsFirstQuestionMark(target: String, path: String, query: String) {
        let (splitPath, splitQuery) = HTTPEventBuilder.split(target: target)
        #expect(splitPath == path)
        #expect(splitQuery == query)
    }

    @Test(arguments: [
        "", "/", "//", "/a", "a", "/a/", "/a//b", "/%41/b%2F", "/é/ü", "/e\u{301}/x", "/😀//😀/", "/a/b/c/d/e/f/g/h/i/j",
        "/long-piece-past-fifteen-bytes/%", "%", "/a%",
    ])
    func aPathSplitsIntoItsPiecesAsTheUTF8ViewSplits(path: String) {
        let (pieces, escaped) = RouteTable.pieces(of: path)
        #expect(pieces == path.utf8.split(separator: UInt8(ascii: "/")).map { Substring($0) })
        #expect(escaped == path.utf8.contains(UInt8(ascii: "%")))
    }

    @Test func exactMethodBeatsAny() throws {
        let routes = try table(["any": ["ANY /thing"], "get": ["GET /thing"]])
        #expect(routes.match(method: "GET", path: "/thing")?.function == "get")
        #expect(routes.match(method: "POST", path: "/thing")?.function == "any")
    }

    @Test func rootRouteMatchesSlash() throws {
        let routes = try table(["root": ["GET /"]])
        #expect(routes.match(method: "GET", path: "/")?.function == "root")
    }
}

struct HTTPEventBuilderTests {
    @Test func restEventFollowsPayloadFormatOne() throws {
        var route = try Route(parsing: "POST /hello/{name}")
        route.payload = .v1
        let builder = HTTPEventBuilder(
            method: "POST",
            path: "/hello/Ada%20L",
            query: "a=1&a=2&b=x%20y",
            headers: [("X-Thing", "one"), ("x-thing", "two"), ("Cookie", "c=1"), ("User-Agent", "curl/8")],
            body: Array("hi".utf8),
            sourceIP: "10.1.2.3",
            requestID: "req-1",
            route: RouteTable.Match(function: "hello", route: route, pathParameters: ["name": "Ada L"])
        )
        let event = try JSONDecoder().decode(APIGatewayRequest.self, from: Data(builder.encodeV1()))
        #expect(event.resource == "/hello/{name}")
        #expect(event.path == "/hello/Ada L")
        #expect(event.httpMethod == "POST")
        #expect(event.headers?["X-Thing"] == "two")
        #expect(event.multiValueHeaders?["X-Thing"] == ["one", "two"])
        #expect(event.headers?["Cookie"] == "c=1")
        #expect(event.queryStringParameters == ["a": "2", "b": "x y"])
        #expect(event.multiValueQueryStringParameters == ["a": ["1", "2"], "b": ["x y"]])
        #expect(event.pathParameters == ["name": "Ada L"])
        #expect(event.requestContext.identity.sourceIp == "10.1.2.3")
        #expect(event.requestContext.identity.userAgent == "curl/8")
        #expect(event.requestContext.requestId == "req-1")
        #expect(event.body == "hi")
        let bare = HTTPEventBuilder(method: "GET", path: "/x")
        let json = try JSONSerialization.jsonObject(with: Data(bare.encodeV1())) as? [String: Any]
        #expect(json?["queryStringParameters"] is NSNull, "REST sends null, not {}, for no query")
        #expect(json?["body"] is NSNull)
    }

    @Test func eventFollowsPayloadFormatTwo() throws {
        let builder = HTTPEventBuilder(
            method: "POST",
            path: "/hello/Ada",
            query: "a=1&a=2&b=x%20y&flag",
            headers: [("X-Thing", "one"), ("x-thing", "two"), ("Cookie", "c1=v1; c2=v2"), ("User-Agent", "curl/8")],
            body: Array("hi".utf8),
            sourceIP: "10.1.2.3",
            domainName: "api.example.com",
            requestID: "req-1",
            route: RouteTable.Match(
                function: "hello",
                route: try Route(parsing: "POST /hello/{name}"),
                pathParameters: ["name": "Ada"]
            )
        )
        let event = builder.build()
        #expect(event.version == "2.0")
        #expect(event.routeKey == "POST /hello/{name}")
        #expect(event.rawPath == "/hello/Ada")
        #expect(event.rawQueryString == "a=1&a=2&b=x%20y&flag")
        #expect(event.headers["x-thing"] == "one,two")
        #expect(event.headers["cookie"] == nil)
        #expect(event.cookies == ["c1=v1", "c2=v2"])
        #expect(event.queryStringParameters == ["a": "1,2", "b": "x y", "flag": ""])
        #expect(event.pathParameters == ["name": "Ada"])
        #expect(event.body == "hi")
        #expect(!event.isBase64Encoded)
        #expect(event.requestContext.http.sourceIp == "10.1.2.3")
        #expect(event.requestContext.http.userAgent == "curl/8")
        #expect(event.requestContext.domainName == "api.example.com")
        #expect(event.requestContext.domainPrefix == "api")
        #expect(event.requestContext.requestId == "req-1")
        #expect(event.requestContext.time.wholeMatch(of: /\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000/) != nil)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as! [String: Any]
        #expect(json["stageVariables"] == nil)
        #expect((json["requestContext"] as? [String: Any])?["timeEpoch"] is Int)
    }

    @Test func binaryContentTypeIsBase64EvenWhenUTF8() {
        let event = HTTPEventBuilder(
            method: "PUT",
            path: "/f",
            headers: [("Content-Type", "application/octet-stream")],
            body: Array("abc".utf8)
        ).build()
        #expect(event.isBase64Encoded)
        #expect(event.body == "YWJj")
    }
}

struct JSONStringTests {
    @Test(arguments: ["plain", "", "quote \" and \\ back", "line\nbreak\ttab\r", "\u{01}control", "ünïcödé ✓"])
    func quotedStringsDecodeBackToTheOriginal(text: String) throws {
        let quoted = HTTPEventBuilder(method: "GET", path: "/", headers: [("x", text)]).build().headers["x"]
        #expect(quoted == text)
    }
}
