import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `galley events SOURCE` for every common AWS source: what it prints is valid for Powertools'
/// parser model of that source, and reaches a function (`digest`, which decodes it into the
/// Galley type) through `galley invoke --event` and through the queue.
@Suite(.serialized)
struct EventSourcesTests {
    /// `galley events` arguments, and the Powertools model that must accept what they print.
    static let sources: [(arguments: [String], model: String, type: String)] = [
        (["s3", "--key", "photos/Ada Lovelace.jpg"], "S3Model", "S3Event"),
        (["s3", "--event-name", "ObjectRemoved:Delete"], "S3Model", "S3Event"),
        (["sqs", "--body", "one", "--body", "two"], "SqsModel", "SQSEvent"),
        (["sns"], "SnsModel", "SNSEvent"),
        (["dynamodb"], "DynamoDBStreamModel", "DynamoDBEvent"),
        (["dynamodb", "--event-name", "MODIFY"], "DynamoDBStreamModel", "DynamoDBEvent"),
        (["dynamodb", "--event-name", "REMOVE"], "DynamoDBStreamModel", "DynamoDBEvent"),
        (["kinesis"], "KinesisDataStreamModel", "KinesisEvent"),
        (["eventbridge"], "EventBridgeModel", "EventBridgeEvent"),
        (["schedule"], "EventBridgeModel", "ScheduledEvent"),
        (
            ["apigateway", "--method", "POST", "--path", "/orders?x=1", "--body", "{}"], "APIGatewayProxyEventModel",
            "APIGatewayRequest"
        ),
        (["http"], "APIGatewayProxyEventV2Model", "APIGatewayV2Request"),
        (["alb"], "AlbModel", "ALBTargetGroupRequest"),
        (["cloudwatch-logs"], "CloudWatchLogsModel", "CloudWatchLogsEvent"),
        (["cognito", "--trigger", "pre-signup"], "CognitoPreSignupTriggerModel", "CognitoUserPoolEvent"),
        (["cognito", "--trigger", "post-confirmation"], "CognitoPostConfirmationTriggerModel", "CognitoUserPoolEvent"),
        (
            ["cognito", "--trigger", "pre-authentication"], "CognitoPreAuthenticationTriggerModel",
            "CognitoUserPoolEvent"
        ),
        (
            ["cognito", "--trigger", "post-authentication"], "CognitoPostAuthenticationTriggerModel",
            "CognitoUserPoolEvent"
        ),
        (
            ["cognito", "--trigger", "pre-token-generation"], "CognitoPreTokenGenerationTriggerModelV1",
            "CognitoUserPoolEvent"
        ),
        (["cognito", "--trigger", "custom-message"], "CognitoCustomMessageTriggerModel", "CognitoUserPoolEvent"),
        (
            ["cognito", "--trigger", "define-auth-challenge"], "CognitoDefineAuthChallengeTriggerModel",
            "CognitoUserPoolEvent"
        ),
        (
            ["cognito", "--trigger", "create-auth-challenge"], "CognitoCreateAuthChallengeTriggerModel",
            "CognitoUserPoolEvent"
        ),
        (
            ["cognito", "--trigger", "verify-auth-challenge"], "CognitoVerifyAuthChallengeTriggerModel",
            "CognitoUserPoolEvent"
        ),
        (["cognito", "--trigger", "migrate-user"], "CognitoMigrateUserTriggerModel", "CognitoUserPoolEvent"),
    ]

    /// Validates each `file` against its model; prints one line per file, `ok` or the errors.
    static let validator = """
        import json, sys
        from aws_lambda_powertools.utilities.parser import parse, models
        for model, path in zip(sys.argv[1::2], sys.argv[2::2]):
            try:
                parse(event=json.load(open(path)), model=getattr(models, model))
                print("ok")
            except Exception as error:
                print(path, "invalid:", str(error).replace("\\n", " | "))
        """

    let directory: TemporaryDirectory
    let config: String

    init() throws {
        directory = try TemporaryDirectory()
        config = try directory.write(
            "runtime.json",
            """
            {
              "storage": { "path": "data" },
              "functions": { "digest": { "handler": "Digest" } }
            }
            """
        )
    }

    /// Prints every source's event into a file of its own.
    func generate() async throws -> [String] {
        var files: [String] = []
        for (index, source) in Self.sources.enumerated() {
            let result = try await runGalley(["events"] + source.arguments)
            #expect(result.status == 0, "galley events \(source.arguments): \(result.err)")
            files.append(try directory.write("event-\(index).json", result.out))
        }
        return files
    }

    @Test(
        .enabled(
            if: Tools.isCI || Tools.pythonHas("aws_lambda_powertools.utilities.parser"),
            "aws-lambda-powertools is not installed"
        )
    )
    func everyEventIsValidForPowertoolsModel() async throws {
        let files = try await generate()
        let script = try directory.write("validate.py", Self.validator)
        let arguments = zip(Self.sources, files).flatMap { [$0.model, $1] }
        let result = try await runProcess("python3", [script] + arguments, timeout: .seconds(120))
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.count == Self.sources.count, "\(result.out)\(result.err)")
        for (line, source) in zip(lines, Self.sources) {
            #expect(line == "ok", "galley events \(source.arguments.joined(separator: " ")): \(line)")
        }
    }

    @Test func everyEventDecodesInAFunctionThroughInvoke() async throws {
        let files = try await generate()
        for (file, source) in zip(files, Self.sources) {
            let result = try await runGalley(["invoke", "digest", "--config", config, "--event", file])
            #expect(result.status == 0, "\(source.arguments): \(result.out) \(result.err)")
            let answer = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
            #expect(answer?["type"] as? String == source.type, "\(source.arguments): \(result.out)")
        }
        // What the options chose reaches the handler, decoded.
        let s3 = try await runGalley(["invoke", "digest", "--config", config, "--event", files[0]])
        #expect(s3.out.contains("example-bucket/photos/Ada Lovelace.jpg"), "\(s3.out)")
        let sqs = try await runGalley(["invoke", "digest", "--config", config, "--event", files[2]])
        #expect(sqs.out.contains(#""batchItemFailures":[]"#) && sqs.out.contains("one, two"), "\(sqs.out)")
    }

    @Test func everyEventDecodesInAFunctionThroughTheQueue() async throws {
        let files = try await generate()
        let server = try await ServerProcess(config: config)
        for file in files {
            var request = URLRequest(url: URL(string: "\(server.address)/2015-03-31/functions/digest/invocations")!)
            request.httpMethod = "POST"
            request.setValue("Event", forHTTPHeaderField: "X-Amz-Invocation-Type")
            request.httpBody = try Data(contentsOf: URL(filePath: file))
            let (_, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 202)
        }
        // Digest logs `TYPE: summary` for each event it decoded; every source's type must appear.
        let types = Set(Self.sources.map(\.type))
        let delivered = try await server.waitForLog(timeout: .seconds(120)) { log in
            types.allSatisfy { log.contains("\t\($0): ") }
                && log.components(separatedBy: "CognitoUserPoolEvent: ").count - 1 == 10
        }
        #expect(delivered, "\(server.stderr)")
        #expect(!server.stderr.contains("UnknownEventSource"))
    }

    @Test func badOptionsAreNamed() async throws {
        let cases: [([String], String)] = [
            (["s3", "--event-name", "Uploaded"], "--event-name"),
            (["dynamodb", "--event-name", "UPSERT"], "--event-name"),
            (["dynamodb", "--key", "abc"], "--key"),
            (["eventbridge", "--detail", "[1]"], "--detail"),
            (["cognito", "--trigger", "sign-in"], "--trigger"),
            (["sqs", "--account", "12"], "--account"),
            (["apigateway", "--path", "hello"], "--path"),
        ]
        for (arguments, option) in cases {
            let result = try await runGalley(["events"] + arguments)
            #expect(result.status != 0 && result.err.contains(option), "\(arguments): \(result.err)")
            #expect(result.out.isEmpty)
        }
    }
}
