import Foundation
import Galley
import GalleyHost
import Logging
import Testing

struct HandlerTests {
    struct Greeter: Handler {
        struct Event: Decodable { var name: String }
        struct Output: Encodable { var greeting: String }
        let prefix: String

        init(context: InitContext) {
            prefix = context.environment["PREFIX"] ?? "Hi"
        }

        func handle(_ event: Event, context: Context) async throws -> Output {
            if event.name == "error" { throw FunctionError("no errors please", type: "Validation") }
            if event.name == "plain" { throw PlainError() }
            if event.name == "stored" {
                // Handler code decoding something that is not the event, e.g. a stored value.
                _ = try JSONDecoder().decode([String: Int].self, from: Data(#"{"count":"seven"}"#.utf8))
            }
            if event.name == "tricky" {
                throw FunctionError("a \"quoted\"\nline\tand \u{1} and é and \\", type: "Tricky\"Type")
            }
            return Output(greeting: "\(prefix) \(event.name)")
        }
    }

    struct PlainError: Error, CustomStringConvertible {
        var description: String { "plain failure" }
    }

    let catalog: Catalog = [
        .handler("Greeter", Greeter.self),
        .closure("Shout") { (event: [String: String], _: Context) in event.mapValues { $0.uppercased() } },
    ]

    func invoke(
        _ handler: String,
        _ payload: String,
        environment: [String: String] = [:]
    ) async throws -> (
        String, Bool
    ) {
        var function = FunctionConfiguration(handler: handler)
        function.isolation = .inline
        function.environment = environment
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["f": function]),
            catalog: catalog,
            file: "test.json"
        )
        let dispatcher = Dispatcher(deployment: deployment, logWriter: .discarding)
        let result = try await dispatcher.invoke(Invocation(function: "f", payload: Data(payload.utf8)))
        return (String(decoding: result.payload, as: UTF8.self), result.isFunctionError)
    }

    @Test func codableHandlerDecodesTheEventAndEncodesTheOutput() async throws {
        let (payload, failed) = try await invoke("Greeter", #"{"name":"Ada"}"#, environment: ["PREFIX": "Hey"])
        #expect(payload == #"{"greeting":"Hey Ada"}"#)
        #expect(!failed)
    }

    @Test func closureHandlerRuns() async throws {
        let (payload, failed) = try await invoke("Shout", #"{"a":"quiet"}"#)
        #expect(payload == #"{"a":"QUIET"}"#)
        #expect(!failed)
    }

    @Test func functionErrorKeepsItsTypeAndMessage() async throws {
        let (payload, failed) = try await invoke("Greeter", #"{"name":"error"}"#)
        #expect(failed)
        #expect(payload == #"{"errorType":"Validation","errorMessage":"no errors please","stackTrace":[]}"#)
    }

    @Test func otherErrorsReportTheirTypeName() async throws {
        let (payload, _) = try await invoke("Greeter", #"{"name":"plain"}"#)
        let object = try JSONDecoder().decode(ErrorObject.self, from: Data(payload.utf8))
        #expect(object.errorType == "PlainError")
        #expect(object.errorMessage == "plain failure")
    }

    @Test func eventOfTheWrongShapeNamesTheField() async throws {
        let (payload, failed) = try await invoke("Greeter", #"{"name": 42}"#)
        #expect(failed)
        let object = try JSONDecoder().decode(ErrorObject.self, from: Data(payload.utf8))
        #expect(object.errorType == "Runtime.UnmarshalError")
        #expect(object.errorMessage.contains("name: expected a string, found number"))
    }

    @Test func missingFieldIsNamed() async throws {
        let (payload, _) = try await invoke("Greeter", "{}")
        let object = try JSONDecoder().decode(ErrorObject.self, from: Data(payload.utf8))
        #expect(object.errorMessage.contains("missing required field 'name'"))
    }

    @Test func errorObjectHasLambdaShape() async throws {
        // The bytes a caller gets, with characters that must be escaped in the message and type.
        let (payload, failed) = try await invoke("Greeter", #"{"name":"tricky"}"#)
        #expect(failed)
        #expect(payload.hasPrefix(#"{"errorType":"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["errorType", "errorMessage", "stackTrace"])
        #expect(object["errorType"] as? String == "Tricky\"Type")
        #expect(object["errorMessage"] as? String == "a \"quoted\"\nline\tand \u{1} and é and \\")
        #expect((object["stackTrace"] as? [Any])?.isEmpty == true)
    }

    @Test func decodingErrorFromHandlerCodeIsNotAnUnmarshalError() async throws {
        let (payload, failed) = try await invoke("Greeter", #"{"name":"stored"}"#)
        #expect(failed)
        let object = try JSONDecoder().decode(ErrorObject.self, from: Data(payload.utf8))
        #expect(object.errorType == "DecodingError")
        #expect(object.errorMessage == "count: expected a number, found a string")
    }

    @Test func httpRequestBodyIsDecodedFromBase64() throws {
        var request = HTTPEventBuilder(method: "POST", path: "/x", body: [0xFF, 0x00, 0x01]).build()
        #expect(request.isBase64Encoded)
        #expect(request.bodyData == Data([0xFF, 0x00, 0x01]))
        request = HTTPEventBuilder(method: "POST", path: "/x", body: Array(#"{"a":1}"#.utf8)).build()
        #expect(!request.isBase64Encoded)
        #expect(try request.decodeBody(as: [String: Int].self) == ["a": 1])
    }

    @Test func jsonResponseSetsContentType() throws {
        let response = try APIGatewayV2Response(statusCode: 201, json: ["ok": true])
        #expect(response.statusCode == 201)
        #expect(response.headers?["content-type"] == "application/json")
        #expect(response.body == #"{"ok":true}"#)
    }
}
