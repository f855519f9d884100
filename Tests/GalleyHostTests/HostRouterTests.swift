import Foundation
import Galley
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import GalleyHost

/// Every status and header of `galley serve`, through a live host on a free loopback port.
struct HostRouterTests {
    struct Slow: Handler {
        struct Event: Decodable { var ms: Int? }
        init(context: InitContext) {}
        func handle(_ event: Event, context: Context) async throws -> [String: String] {
            try await Task.sleep(for: .milliseconds(event.ms ?? 0))
            return ["clientContext": context.clientContext ?? "", "requestId": context.requestID]
        }
    }

    static let catalog: Catalog = [
        .handler("Slow", Slow.self),
        .closure("Echo") { (event: APIGatewayV2Request, _: Context) in event },
        .closure("Fail") { (_: [String: String], _: Context) -> [String: String] in
            throw FunctionError("secret internals", type: "Boom")
        },
        .closure("Structured") { (event: APIGatewayV2Request, _: Context) in
            APIGatewayV2Response(
                statusCode: 201,
                headers: ["content-type": "text/plain", "x-custom": "yes"],
                cookies: ["a=1; Max-Age=60", "b=2"],
                body: "created \(event.pathParameters?["id"] ?? "")"
            )
        },
        .closure("Binary") { (_: APIGatewayV2Request, _: Context) in
            APIGatewayV2Response(
                statusCode: 200,
                headers: ["content-type": "image/png"],
                body: "iVBORw==",
                isBase64Encoded: true
            )
        },
        .closure("Malformed") { (_: APIGatewayV2Request, _: Context) in ["statusCode": "not a number"] },
        .closure("Text") { (_: APIGatewayV2Request, _: Context) in "Hello" },
        .closure("Framing") { (_: APIGatewayV2Request, _: Context) in
            APIGatewayV2Response(
                statusCode: 200,
                headers: [
                    "Content-Length": "2", "Transfer-Encoding": "chunked", "Connection": "close", "x-ok": "1",
                ],
                body: "hello world"
            )
        },
        .closure("Huge") { (_: [String: String], _: Context) in String(repeating: "x", count: 7 << 20) },
        .closure("Size") { (event: APIGatewayV2Request, _: Context) in ["bytes": event.bodyData?.count ?? -1] },
        .closure("Status") { (event: APIGatewayV2Request, _: Context) in
            APIGatewayV2Response(
                statusCode: Int(event.pathParameters?["code"] ?? "") ?? 200,
                body: "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
            )
        },
    ]

    let directory: URL
    let config: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appending(path: "galley-host-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        config = directory.appending(path: "runtime.json").path
        try write(invokeAPI: true)
    }

    func write(invokeAPI: Bool, exposeEnvironment: Bool = false, hostEndpoints: Bool? = nil) throws {
        let endpoints = hostEndpoints.map { #", "hostEndpoints": \#($0)"# } ?? ""
        let json = """
            {
              "server": { "invokeAPI": \(invokeAPI), "exposeEnvironment": \(exposeEnvironment)\(endpoints) },
              "functions": {
                "slow": {
                  "handler": "Slow", "isolation": "inline", "concurrency": 1, "timeout": 5,
                  "environment": { "API_KEY": "hunter2" }
                },
                "echo": { "handler": "Echo", "isolation": "inline", "routes": ["ANY /echo/{proxy+}"] },
                "fail": { "handler": "Fail", "isolation": "inline", "routes": ["GET /fail"] },
                "structured": { "handler": "Structured", "isolation": "inline", "routes": ["POST /items/{id}"] },
                "binary": { "handler": "Binary", "isolation": "inline", "routes": ["GET /logo.png"] },
                "malformed": { "handler": "Malformed", "isolation": "inline", "routes": ["GET /malformed"] },
                "text": { "handler": "Text", "isolation": "inline", "routes": ["GET /text"] },
                "framing": { "handler": "Framing", "isolation": "inline", "routes": ["GET /framing"] },
                "huge": { "handler": "Huge", "isolation": "inline", "routes": ["GET /huge"] },
                "size": { "handler": "Size", "isolation": "inline", "routes": ["POST /size"] },
                "status": { "handler": "Status", "isolation": "inline", "routes": ["ANY /status/{code}"] }
              }
            }
            """
        try Data(json.utf8).write(to: URL(filePath: config))
    }

    func withHost(_ test: @escaping @Sendable (TestClient) async throws -> Void) async throws {
        try await withHost { client, _ in try await test(client) }
    }

    func withHost(_ test: @escaping @Sendable (TestClient, FunctionHost) async throws -> Void) async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = HostOptions(configurationFile: config)
        options.port = 0
        let host = try FunctionHost(options: options, catalog: Self.catalog)
        try await host.withLiveServer { client in try await test(client, host) }
    }

    func invoke(
        _ client: TestClient,
        _ name: String,
        _ body: String = "{}",
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        try await client.execute(
            uri: "/2015-03-31/functions/\(name)/invocations",
            method: .post,
            headers: headers,
            body: ByteBuffer(string: body)
        )
    }

    @Test func successCarriesTheLambdaHeaders() async throws {
        try await withHost { client in
            let response = try await invoke(client, "slow")
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("X-Amz-Executed-Version")!] == "$LATEST")
            #expect(response.headers[.contentType] == "application/json")
            let requestID = try #require(response.headers[HTTPField.Name("x-amzn-RequestId")!])
            let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
            #expect(body["requestId"] == requestID)
            #expect(response.headers[HTTPField.Name("X-Amz-Function-Error")!] == nil)
        }
    }

    /// The fast lane's answer carries what Hummingbird's application adds to its own: `Server` and an
    /// RFC 9110 `Date`.
    @Test func theFastLaneAddsTheHeadersHummingbirdWould() async throws {
        try await withHost { client in
            let fast = try await invoke(client, "slow")
            // `//` leaves the request to Hummingbird's router.
            let routed = try await client.execute(
                uri: "//2015-03-31/functions/slow/invocations",
                method: .post,
                body: ByteBuffer(string: "{}")
            )
            let imfFixdate =
                /(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT/
            for answer in [fast, routed] {
                #expect(answer.status == .ok)
                #expect(answer.headers[.server] == "Galley")
                let date = try #require(answer.headers[.date])
                #expect(date.wholeMatch(of: imfFixdate) != nil, "\(date)")
            }
        }
    }

    @Test func functionErrorIsA200WithUnhandled() async throws {
        try await withHost { client in
            let response = try await invoke(client, "fail")
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("X-Amz-Function-Error")!] == "Unhandled")
            #expect(
                String(buffer: response.body)
                    == #"{"errorType":"Boom","errorMessage":"secret internals","stackTrace":[]}"#
            )
        }
    }

    @Test func tailReturnsTheInvocationsLog() async throws {
        try await withHost { client in
            let response = try await invoke(client, "slow", headers: [HTTPField.Name("X-Amz-Log-Type")!: "Tail"])
            let requestID = try #require(response.headers[HTTPField.Name("x-amzn-RequestId")!])
            let encoded = try #require(response.headers[HTTPField.Name("X-Amz-Log-Result")!])
            let log = String(decoding: try #require(Data(base64Encoded: encoded)), as: UTF8.self)
            #expect(log.hasPrefix("START RequestId: \(requestID) Version: $LATEST"))
            #expect(log.contains("END RequestId: \(requestID)"))
            #expect(log.contains("REPORT RequestId: \(requestID)\tDuration: "))
        }
    }

    @Test func clientContextReachesTheHandler() async throws {
        try await withHost { client in
            let context = Data(#"{"custom":{"k":"v"}}"#.utf8).base64EncodedString()
            let response = try await invoke(client, "slow", headers: [HTTPField.Name("X-Amz-Client-Context")!: context])
            let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
            #expect(body["clientContext"] == #"{"custom":{"k":"v"}}"#)
            let bad = try await invoke(client, "slow", headers: [HTTPField.Name("X-Amz-Client-Context")!: "%%%"])
            #expect(bad.status == .badRequest)
        }
    }

    @Test func eventIsAcceptedAndDryRunRunsNothing() async throws {
        try await withHost { client in
            let event = try await invoke(client, "slow", headers: [HTTPField.Name("X-Amz-Invocation-Type")!: "Event"])
            #expect(event.status == .accepted)
            #expect(event.body.readableBytes == 0)
            #expect(event.headers[HTTPField.Name("x-amzn-RequestId")!] != nil)
            let dry = try await invoke(client, "slow", headers: [HTTPField.Name("X-Amz-Invocation-Type")!: "DryRun"])
            #expect(dry.status == .noContent)
            // Nothing ran: "slow" has no environment, busy or warm (the queue does not deliver here).
            func environments() async throws -> (running: Int?, idle: Int?) {
                let document = try await client.execute(uri: "/_galley/functions", method: .get)
                let object = try JSONSerialization.jsonObject(with: Data(buffer: document.body)) as? [String: Any]
                let slow = (object?["functions"] as? [String: Any])?["slow"] as? [String: Any]
                return (slow?["running"] as? Int, slow?["idle"] as? Int)
            }
            #expect(try await environments() == (0, 0))
            // The check can fail: a real invocation leaves one warm.
            #expect(try await invoke(client, "slow").status == .ok)
            #expect(try await environments() == (0, 1))
            let dryUnknown = try await invoke(
                client,
                "nope",
                headers: [HTTPField.Name("X-Amz-Invocation-Type")!: "DryRun"]
            )
            #expect(dryUnknown.status == .notFound)
        }
    }

    @Test(arguments: [
        "slow", "slow:$LATEST", "slow%3A%24LATEST", "123456789012%3Afunction%3Aslow",
        "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aslow",
        "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aslow%3A%24LATEST",
    ])
    func everyFormOfTheNameIsAccepted(name: String) async throws {
        try await withHost { client in
            let response = try await invoke(client, name)
            #expect(response.status == .ok)
        }
    }

    @Test(arguments: ["/2015-03-31/functions/slow?Qualifier=prod", "/2015-03-31/functions/slow:7/configuration"])
    func getFunctionWithAnUnknownQualifierIsResourceNotFound(path: String) async throws {
        try await withHost { client in
            let response = try await client.execute(uri: path, method: .get)
            #expect(response.status == .notFound)
            #expect(response.headers[HTTPField.Name("x-amzn-ErrorType")!] == "ResourceNotFoundException")
            #expect(String(buffer: response.body).contains("function:slow:"), "\(String(buffer: response.body))")
            let latest = try await client.execute(uri: "/2015-03-31/functions/slow?Qualifier=$LATEST", method: .get)
            #expect(latest.status == .ok)
        }
    }

    @Test func unknownFunctionIsResourceNotFound() async throws {
        try await withHost { client in
            let response = try await invoke(client, "nope")
            #expect(response.status == .notFound)
            #expect(response.headers[HTTPField.Name("x-amzn-ErrorType")!] == "ResourceNotFoundException")
            #expect(
                String(buffer: response.body)
                    == #"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"}"#
            )
            let alias = try await client.execute(
                uri: "/2015-03-31/functions/slow/invocations?Qualifier=prod",
                method: .post
            )
            #expect(alias.status == .notFound)
            #expect(String(buffer: alias.body).contains("function:slow:prod"))
        }
    }

    @Test func invalidPayloadIsInvalidRequestContent() async throws {
        try await withHost { client in
            let response = try await invoke(client, "slow", "{nope")
            #expect(response.status == .badRequest)
            #expect(response.headers[HTTPField.Name("x-amzn-ErrorType")!] == "InvalidRequestContentException")
            let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
            #expect(body["Type"] == "User")
            #expect(body["message"]?.hasPrefix("Could not parse request body into json: line 1, column 2") == true)
        }
    }

    @Test func oversizedPayloadsAreRequestTooLarge() async throws {
        try await withHost { client in
            let sync = try await invoke(client, "slow", "[" + String(repeating: "1,", count: 3_200_000) + "1]")
            #expect(sync.status == .contentTooLarge)
            #expect(sync.headers[HTTPField.Name("x-amzn-ErrorType")!] == "RequestTooLargeException")
            let event = try await invoke(
                client,
                "slow",
                "[" + String(repeating: "1,", count: 600_000) + "1]",
                headers: [HTTPField.Name("X-Amz-Invocation-Type")!: "Event"]
            )
            #expect(event.status == .contentTooLarge)
            #expect(String(buffer: event.body).contains("1048576"))
        }
    }

    /// A body that says it is larger than any function takes is refused once 6 MB of it have come, not
    /// kept whole: the client gets its 413 without sending the rest (the connection is then closed).
    @Test(arguments: ["/2015-03-31/functions/slow/invocations", "/echo/big"])
    func aBodyOverTheLimitIsRefusedWithoutWaitingForTheRest(path: String) async throws {
        try await withHost { client in
            let head = "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 104857600\r\n\r\n"
            let answer = try await client.firstAnswer(
                to: ByteBuffer(string: head + String(repeating: "1", count: 7 << 20)),
                within: .seconds(60)
            )
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
        }
    }

    @Test func overTheConcurrencyLimitIsTooManyRequests() async throws {
        try await withHost { client, host in
            // Hold the only slot of `slow`, then call it over HTTP.
            let holder = Task {
                try await host.dispatcher.invoke(Invocation(function: "slow", payload: Data(#"{"ms": 2000}"#.utf8)))
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                let functions = try await client.execute(uri: "/_galley/functions", method: .get)
                if String(buffer: functions.body).contains(#""running":1"#) { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            let response = try await invoke(client, "slow")
            #expect(response.status == .tooManyRequests)
            #expect(response.headers[HTTPField.Name("x-amzn-ErrorType")!] == "TooManyRequestsException")
            #expect(response.headers[.retryAfter] == "1")
            let body = try JSONDecoder().decode([String: String].self, from: Data(buffer: response.body))
            #expect(body["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded")
            #expect(body["message"] == "Rate Exceeded.")
            #expect(try await holder.value.isFunctionError == false)
        }
    }

    @Test func listAndGetFunctionReturnConfigurations() async throws {
        try await withHost { client in
            let list = try await client.execute(uri: "/2015-03-31/functions", method: .get)
            let object = try JSONSerialization.jsonObject(with: Data(buffer: list.body)) as? [String: Any]
            let functions = try #require(object?["Functions"] as? [[String: Any]])
            #expect(
                functions.map { $0["FunctionName"] as? String } == [
                    "binary", "echo", "fail", "framing", "huge", "malformed", "size", "slow", "status", "structured",
                    "text",
                ]
            )
            #expect(functions[7]["Timeout"] as? Int == 5)
            #expect(functions[7]["LastModified"] is String)
            let get = try await client.execute(uri: "/2015-03-31/functions/slow", method: .get)
            let function = try JSONSerialization.jsonObject(with: Data(buffer: get.body)) as? [String: Any]
            #expect(
                (function?["Configuration"] as? [String: Any])?["FunctionArn"] as? String
                    == "arn:aws:lambda:us-east-1:123456789012:function:slow"
            )
            let missing = try await client.execute(uri: "/2015-03-31/functions/nope/configuration", method: .get)
            #expect(missing.status == .notFound)
            // Any caller may ask, so values are masked; the names stay.
            for body in [Data(buffer: list.body), Data(buffer: get.body)] {
                #expect(!String(decoding: body, as: UTF8.self).contains("hunter2"))
                #expect(String(decoding: body, as: UTF8.self).contains(#""API_KEY":"****""#))
            }
        }
    }

    @Test func environmentValuesAreShownOnlyWhenRuntimeJSONOptsIn() async throws {
        try write(invokeAPI: true, exposeEnvironment: true)
        try await withHost { client in
            let get = try await client.execute(uri: "/2015-03-31/functions/slow/configuration", method: .get)
            #expect(String(buffer: get.body).contains(#""API_KEY":"hunter2""#))
        }
    }

    @Test func aPathThatOnlyStartsLikeTheInvokeAPIIsNotIt() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/2015-03-31/functionsslow/invocations", method: .post)
            #expect(response.status == .notFound)
            #expect(String(buffer: response.body) == #"{"message":"Not Found"}"#)
        }
    }

    @Test func aPathTheRouterWouldNormaliseStillReachesItsEndpoint() async throws {
        try await withHost { client in
            // The router skips empty pieces of a path: the front door's fast paths must leave these to it.
            let health = try await client.execute(uri: "//_galley/health", method: .get)
            #expect(String(buffer: health.body) == #"{"status":"ok"}"#)
            let invoked = try await client.execute(
                uri: "/2015-03-31/functions/slow/invocations/",
                method: .post,
                body: ByteBuffer(string: "{}")
            )
            #expect(invoked.status == .ok)
            #expect(String(buffer: invoked.body).contains(#""requestId""#))
        }
    }

    /// One connection, six requests written at once, some answered by the fast lane and some by
    /// Hummingbird's loop: the answers leave in the order the requests came, a fast request waits for
    /// Hummingbird's answer before it and the other way round, and after `Connection: close` nothing more
    /// is run or answered.
    @Test func pipelinedRequestsAreAnsweredInOrderWhoeverAnswersThem() async throws {
        try await withHost { client in
            func request(_ method: String, _ path: String, body: String = "", close: Bool = false) -> String {
                "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n"
                    + (close ? "Connection: close\r\n" : "") + "\r\n" + body
            }
            let received = try await client.raw(
                // The router's path (`//`), 300 ms in the function; then a route, which is the fast lane's.
                request("POST", "//2015-03-31/functions/slow/invocations", body: #"{"ms":300}"#)
                    + request("GET", "/echo/b")
                    // The fast lane's, 300 ms; then one of the router's endpoints.
                    + request("POST", "/2015-03-31/functions/slow/invocations", body: #"{"ms":300}"#)
                    + request("GET", "/_galley/health")
                    + request("GET", "/echo/e", close: true)
                    // Never read (NIO's decoder takes no request after `Connection: close`); were it
                    // run, `slow` takes one invocation at a time, and the one below would be refused.
                    + request("POST", "/2015-03-31/functions/slow/invocations", body: #"{"ms":1000}"#)
            )
            let answers = received.components(separatedBy: "HTTP/1.1 ").dropFirst().map { escaped in
                // JSONEncoder writes `/` as `\/`.
                let answer = escaped.replacingOccurrences(of: #"\/"#, with: "/")
                if answer.contains("/echo/b") { return "b" }
                if answer.contains("/echo/e") { return "e" }
                if answer.contains(#""requestId""#) { return "slow" }
                if answer.contains(#"{"status":"ok"}"#) { return "health" }
                return "other: \(answer.prefix(40))"
            }
            #expect(answers == ["slow", "b", "slow", "health", "e"], "\(received.prefix(2000))")
            #expect(received.components(separatedBy: "HTTP/1.1 200 OK").count == 6)
            #expect(try await invoke(client, "slow").status == .ok)
        }
    }

    /// The front door against the router it stands before, in process: every path of up to three
    /// pieces near the ones it tells apart (and of four and five toward an invocation), by GET and by POST,
    /// gets the same status, content type and function error both ways.
    @Test func theFrontDoorAnswersEveryRequestAsTheRouterDoes() async throws {
        try await withHost { _, host in
            let front = host.responder.router()
            let channel = EmbeddedChannel()
            let context = HostRequestContext(
                source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test"))
            )
            let pieces = [
                "", "2015-03-31", "functions", "_galley", "health", "slow", "invocations", "configuration", "echo",
                "text", "%5Fgalley",
            ]
            var paths: [[String]] = [[]]
            var longest: [[String]] = [[]]
            for _ in 0..<3 {
                longest = longest.flatMap { path in pieces.map { path + [$0] } }
                paths += longest
            }
            let near = ["", "functions", "slow", "invocations"]
            for first in ["", "2015-03-31"] {
                for a in near { for b in near { for c in near { paths.append([first, a, b, c]) } } }
                for a in near {
                    for b in near { for c in near { for d in near { paths.append([first, a, b, c, d]) } } }
                }
            }
            for pieces in paths {
                let path = "/" + pieces.joined(separator: "/")
                for method in [HTTPRequest.Method.get, .post] {
                    func request() -> Request {
                        Request(
                            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path),
                            body: RequestBody(buffer: ByteBuffer(string: "{}"))
                        )
                    }
                    let viaFrontDoor = try await front.respond(to: request(), context: context)
                    let viaRouter = try await front.router.respond(to: request(), context: context)
                    #expect(viaFrontDoor.status == viaRouter.status, "\(method) \(path)")
                    #expect(viaFrontDoor.headers[.contentType] == viaRouter.headers[.contentType], "\(method) \(path)")
                    #expect(
                        viaFrontDoor.headers[.amzFunctionError] == viaRouter.headers[.amzFunctionError],
                        "\(method) \(path)"
                    )
                }
            }
            let expected = 1 + 11 + 121 + 1331 + 128 + 512
            #expect(paths.count == expected)
            _ = try channel.finish()
        }
    }

    @Test(arguments: [
        (
            HTTPRequest.Method.post, "/2015-03-31/functions/hello/invocations",
            HostFrontDoor.FastPath?.some(.invoke(function: "hello"))
        ),
        (
            .post, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations",
            .invoke(function: "arn%3Aaws%3Alambda%3Ax")
        ),
        (.get, "/2015-03-31/functions/hello/invocations", nil),
        (.post, "/2015-03-31/functions//invocations", nil),
        (.post, "/2015-03-31/functions/a/b/invocations", nil),
        (.post, "/2015-03-31/functions/hello/invocations/", nil),
        (.post, "//2015-03-31/functions/hello/invocations", nil),
        (.post, "/2015-03-31/functions/invocations", nil),
        (.get, "/2015-03-31/functions", nil),
        (.get, "/2015-03-31", nil),
        (.get, "/_galley", nil),
        (.post, "/_galley", nil),
        (.post, "/2015-03-31/", nil),
        (.post, "", .route),
        (.get, "/_galley/health", nil),
        (.get, "//_galley/health", nil),
        (.get, "/hello/Ada", .route),
        (.post, "/", .route),
        (.get, "/_galleyx", .route),
        (.get, "/_GALLEY/health", .route),
        (.get, "/2015-03-31x/functions", .route),
    ])
    func theFastPathsTakeOnlyWhatTheRouterWouldHandTheSameHandler(
        method: HTTPRequest.Method,
        path: String,
        expected: HostFrontDoor.FastPath?
    ) {
        #expect(HostFrontDoor.FastPath.classify(method: method, path: path) == expected)
    }

    @Test func routeBuildsAPayloadTwoEvent() async throws {
        try await withHost { client in
            let response = try await client.execute(
                uri: "/echo/a/b%20c?x=1&x=2",
                method: .put,
                headers: [.cookie: "s=1; t=2", HTTPField.Name("X-Thing")!: "v"],
                body: ByteBuffer(string: "hello")
            )
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let event = try JSONDecoder().decode(APIGatewayV2Request.self, from: Data(buffer: response.body))
            #expect(event.routeKey == "ANY /echo/{proxy+}")
            #expect(event.pathParameters == ["proxy": "a/b c"])
            #expect(event.queryStringParameters == ["x": "1,2"])
            #expect(event.rawQueryString == "x=1&x=2")
            #expect(event.cookies == ["s=1", "t=2"])
            #expect(event.headers["x-thing"] == "v")
            #expect(event.body == "hello")
            #expect(event.requestContext.http.method == "PUT")
            #expect(response.headers[HTTPField.Name("apigw-requestid")!] == event.requestContext.requestId)
        }
    }

    @Test func structuredResponseSetsStatusHeadersAndCookies() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/items/7", method: .post)
            #expect(response.status.code == 201)
            #expect(response.headers[.contentType] == "text/plain")
            #expect(response.headers[HTTPField.Name("x-custom")!] == "yes")
            #expect(response.headers[values: .setCookie] == ["a=1; Max-Age=60", "b=2"])
            #expect(String(buffer: response.body) == "created 7")
        }
    }

    @Test func theHostOwnsFramingHeaders() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/framing", method: .get)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body) == "hello world")
            #expect(response.headers[.transferEncoding] == nil)
            #expect(response.headers[.connection] == nil)
            #expect(response.headers[.contentLength] == nil || response.headers[.contentLength] == "11")
            #expect(response.headers[HTTPField.Name("x-ok")!] == "1")
        }
    }

    @Test func aResponseOverSixMegabytesIsTheFunctionsError() async throws {
        try await withHost { client in
            let invoked = try await invoke(client, "huge")
            #expect(invoked.status == .ok)
            #expect(invoked.headers[HTTPField.Name("X-Amz-Function-Error")!] == "Unhandled")
            let object = try JSONDecoder().decode(ErrorObject.self, from: Data(buffer: invoked.body))
            #expect(object.errorType == "Function.ResponseSizeTooLarge")
            #expect(object.errorMessage.contains("6291556 bytes"))
            let routed = try await client.execute(uri: "/huge", method: .get)
            #expect(routed.status == .badGateway)
            #expect(routed.body.readableBytes < 100)
        }
    }

    @Test func aRouteTakesSixMegabytesOfBodyWhateverTheEnvelope() async throws {
        try await withHost { client in
            // Bytes that are not UTF-8 travel base64-encoded: the event is a third larger than the body.
            let body = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 6_000_000))
            let response = try await client.execute(uri: "/size", method: .post, body: body)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body) == #"{"bytes":6000000}"#)
            let tooLarge = try await client.execute(
                uri: "/size",
                method: .post,
                body: ByteBuffer(bytes: [UInt8](repeating: 0x61, count: 6_291_457))
            )
            #expect(tooLarge.status == .contentTooLarge)
        }
    }

    @Test func base64BodyIsDecoded() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/logo.png", method: .get)
            #expect(Array(response.body.readableBytesView) == [0x89, 0x50, 0x4E, 0x47])
        }
    }

    @Test func plainJSONResultIsA200() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/text", method: .get)
            #expect(response.status == .ok)
            #expect(String(buffer: response.body) == #""Hello""#)
        }
    }

    @Test func functionErrorOnARouteIsA502WithoutInternals() async throws {
        try await withHost { client in
            let failed = try await client.execute(uri: "/fail", method: .get)
            #expect(failed.status == .badGateway)
            #expect(String(buffer: failed.body) == #"{"message":"Internal Server Error"}"#)
            let malformed = try await client.execute(uri: "/malformed", method: .get)
            #expect(malformed.status == .badGateway)
        }
    }

    @Test(arguments: ["GET /status/204", "GET /status/304", "HEAD /status/200", "GET /status/101", "GET /status/199"])
    func theHostFramesEveryResponseAFunctionCannotForgeOne(request: String) async throws {
        try await withHost { client in
            let answer = try await client.raw("\(request) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(!answer.contains("forged"), "\(answer)")
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "exactly one response: \(answer)")
            let code = request.split(separator: "/").last!
            if code.hasPrefix("1") {
                #expect(answer.hasPrefix("HTTP/1.1 502"), "\(answer)")
            } else {
                #expect(answer.hasPrefix("HTTP/1.1 \(code)"), "\(answer)")
            }
        }
    }

    @Test func unknownRouteIsA404() async throws {
        try await withHost { client in
            let response = try await client.execute(uri: "/nowhere", method: .get)
            #expect(response.status == .notFound)
            #expect(String(buffer: response.body) == #"{"message":"Not Found"}"#)
            let wrongMethod = try await client.execute(uri: "/fail", method: .post)
            #expect(wrongMethod.status == .notFound)
        }
    }

    /// A route that takes every path (`ANY /{proxy+}`) still never takes the host's own prefixes, however
    /// the path is spelt: the router skips empty pieces, and so does what stands after it.
    @Test func aCatchAllRouteNeverTakesTheHostsOwnPrefixes() async throws {
        try Data(
            #"{"functions": {"echo": {"handler": "Echo", "isolation": "inline", "routes": ["ANY /{proxy+}"]}}}"#.utf8
        ).write(to: URL(filePath: config))
        try await withHost { client in
            for path in ["/_galley/nope", "//_galley/nope", "/_galley//nope/"] {
                let answer = try await client.execute(uri: path, method: .get)
                #expect(answer.status == .notFound, "\(path)")
                #expect(String(buffer: answer.body) == #"{"message":"Not Found"}"#, "\(path)")
            }
            for path in ["/2015-03-31/functions/echo/nope", "//2015-03-31//functions/echo/nope"] {
                let answer = try await client.execute(uri: path, method: .get)
                #expect(
                    answer.headers[HTTPField.Name("x-amzn-ErrorType")!] == "InvalidParameterValueException",
                    "\(path)"
                )
            }
            for path in ["/_galleyx/a", "/2015-03-31/functionsx"] {
                let answer = try await client.execute(uri: path, method: .get)
                #expect(answer.status == .ok, "\(path)")
                #expect(String(buffer: answer.body).contains(#""routeKey":"ANY \/{proxy+}""#), "\(path)")
            }
        }
    }

    @Test(arguments: [true, false])
    func aRouteEventNamesTheClientAsTheTrustedProxiesSay(trusted: Bool) async throws {
        let proxies = trusted ? #"["127.0.0.1"]"# : "[]"
        try Data(
            (#"{"server": {"trustedProxies": \#(proxies)}, "#
                + #""functions": {"echo": {"handler": "Echo", "isolation": "inline", "routes": ["ANY /{proxy+}"]}}}"#)
                .utf8
        ).write(to: URL(filePath: config))
        try await withHost { client in
            // Four requests on one connection, whose peer's address is worked out once: each must
            // still be judged by its own X-Forwarded-For.
            let forwarded: [String?] = [nil, "203.0.113.9", nil, "198.51.100.1, 203.0.113.7"]
            var requests = ""
            for (index, value) in forwarded.enumerated() {
                requests += "GET /who/\(index) HTTP/1.1\r\nHost: x\r\n"
                if let value { requests += "X-Forwarded-For: \(value)\r\n" }
                if index == forwarded.count - 1 { requests += "Connection: close\r\n" }
                requests += "\r\n"
            }
            let received = try await client.raw(requests)
            let seen = received.matches(of: /"sourceIp":"([^"]*)"/).map { String($0.1) }
            let expected = forwarded.map { value in
                trusted ? value?.split(separator: " ").last.map(String.init) ?? "127.0.0.1" : "127.0.0.1"
            }
            #expect(seen == expected, "\(received)")
        }
    }

    @Test func invokeAPICanBeTurnedOff() async throws {
        try write(invokeAPI: false)
        try await withHost { client in
            let response = try await invoke(client, "slow")
            #expect(response.status == .notFound)
            #expect(String(buffer: response.body) == #"{"message":"Not Found"}"#)
            #expect(try await client.execute(uri: "/text", method: .get).status == .ok)
            // The host's own endpoints follow the Invoke API unless asked for.
            for path in ["/_galley/health", "/_galley/functions", "/_galley/queue"] {
                let endpoint = try await client.execute(uri: path, method: .get)
                #expect(endpoint.status == .notFound, "\(path)")
                #expect(String(buffer: endpoint.body) == #"{"message":"Not Found"}"#)
            }
        }
    }

    @Test func hostEndpointsCanBeAskedForWithoutTheInvokeAPI() async throws {
        try write(invokeAPI: false, hostEndpoints: true)
        try await withHost { client in
            #expect(try await invoke(client, "slow").status == .notFound)
            let health = try await client.execute(uri: "/_galley/health", method: .get)
            #expect(health.status == .ok)
            #expect(String(buffer: health.body) == #"{"status":"ok"}"#)
        }
    }

    @Test func healthAndFunctionsEndpoints() async throws {
        try await withHost { client in
            let health = try await client.execute(uri: "/_galley/health", method: .get)
            #expect(health.status == .ok)
            #expect(String(buffer: health.body) == #"{"status":"ok"}"#)
            let functions = try await client.execute(uri: "/_galley/functions", method: .get)
            let object = try JSONSerialization.jsonObject(with: Data(buffer: functions.body)) as? [String: Any]
            let slow = (object?["functions"] as? [String: Any])?["slow"] as? [String: Any]
            #expect(slow?["concurrency"] as? Int == 1)
            #expect(slow?["handler"] as? String == "Slow")
        }
    }
}

struct ForwardingTrustTests {
    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let trusted = ["127.0.0.1", "::1"]
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 5000)
        let stranger = try SocketAddress(ipAddress: "198.51.100.7", port: 5000)
        #expect(HostResponder.isTrusted(loopback, trusted))
        #expect(!HostResponder.isTrusted(stranger, trusted))
        #expect(
            HostResponder.clientAddress(peer: loopback, forwardedFor: "203.0.113.9", trustedProxies: trusted)
                == "203.0.113.9"
        )
        #expect(
            HostResponder.clientAddress(
                peer: loopback,
                forwardedFor: "1.1.1.1, 203.0.113.9, 127.0.0.1",
                trustedProxies: trusted
            )
                == "203.0.113.9",
            "the right-most hop that is not a trusted proxy"
        )
        #expect(
            HostResponder.clientAddress(peer: stranger, forwardedFor: nil, trustedProxies: trusted) == "198.51.100.7"
        )
    }
}
