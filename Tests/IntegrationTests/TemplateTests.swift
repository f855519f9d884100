import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `galley serve --template`: a real SAM template (cfn-lint says so) with an HTTP API route, a
/// schedule, a Python function and a Swift one, served and called through nginx and boto3.
@Suite(.serialized)
struct TemplateTests {
    static let template = """
        AWSTemplateFormatVersion: '2010-09-09'
        Transform: AWS::Serverless-2016-10-31
        Description: Galley's template test

        Parameters:
          Greeting:
            Type: String
            Default: Hello

        Globals:
          Function:
            Timeout: 5
            MemorySize: 256

        Resources:
          HelloFunction:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: provided.al2023
              Handler: Hello
              CodeUri: .
              Environment:
                Variables:
                  GREETING: !Ref Greeting
              Events:
                Greet:
                  Type: HttpApi
                  Properties:
                    Path: /hello/{name}
                    Method: get

          ItemsFunction:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: app.rest
              CodeUri: src/echo
              Events:
                Item:
                  Type: Api
                  Properties:
                    Path: /items/{id}
                    Method: get

          EchoFunction:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: !Sub "echo-${AWS::Region}"
              Runtime: python3.12
              Handler: app.handler
              CodeUri: src/echo
              Policies: AWSLambdaBasicExecutionRole
              Environment:
                Variables:
                  HELLO_ARN: !GetAtt HelloFunction.Arn
              Events:
                Nightly:
                  Type: Schedule
                  Properties:
                    Schedule: rate(1 day)
        """

    static let app = """
        import json, os

        def handler(event, context):
            return {"echo": event, "helloArn": os.environ.get("HELLO_ARN"), "function": context.function_name}

        def rest(event, context):
            seen = {
                "httpMethod": event["httpMethod"],
                "resource": event["resource"],
                "id": event["pathParameters"]["id"],
                "tags": event["multiValueQueryStringParameters"]["tag"],
                "sourceIp": event["requestContext"]["identity"]["sourceIp"],
            }
            return {"statusCode": 201, "multiValueHeaders": {"X-Seen": ["a", "b"]}, "body": json.dumps(seen)}
        """

    let directory: TemporaryDirectory
    let templateFile: String

    init() throws {
        directory = try TemporaryDirectory()
        templateFile = try directory.write("template.yaml", Self.template)
        try FileManager.default.createDirectory(atPath: directory.path("src/echo"), withIntermediateDirectories: true)
        _ = try directory.write("src/echo/app.py", Self.app)
    }

    @Test(.enabled(if: Tools.usable("cfn-lint"), "cfn-lint is not installed"))
    func theTemplateIsARealOne() async throws {
        let lint = try await runProcess("cfn-lint", [templateFile], timeout: .seconds(120))
        #expect(lint.status == 0, "\(lint.out)\(lint.err)")
    }

    @Test(
        .enabled(
            if: Tools.usable("nginx", "curl")
                && (Tools.isCI || Tools.pythonHas("boto3") && Tools.pythonHas("awslambdaric")),
            "nginx, curl, boto3 or awslambdaric is not installed"
        )
    )
    func theTemplateIsServedBehindNginxAndToBoto3() async throws {
        let socket = directory.path("galley.sock")
        let server = try await ServerProcess(
            config: templateFile,
            arguments: ["--socket", socket, "--socket-mode", "666", "--parameter-overrides", "Greeting=Howdy"]
        )
        let nginx = try await Nginx(in: directory, socket: socket)
        defer { stop(nginx.process) }

        // The Swift function, through its HttpApi route, with the parameter's value.
        let hello = try await curl(["\(nginx.base)/hello/Ada"])
        #expect(hello.out == #"{"message":"Howdy, Ada!"}"#, "\(server.stderr)")

        // A REST (Api) route: the function receives payload 1.0 and answers by its rules.
        let item = try await curl(["-i", "-H", "X-Forwarded-For: 203.0.113.7", "\(nginx.base)/items/7?tag=a&tag=b"])
        #expect(item.out.hasPrefix("HTTP/1.1 201"), "\(item.out)")
        #expect(item.out.contains("X-Seen: a\r\n") && item.out.contains("X-Seen: b\r\n"), "\(item.out)")
        let seenBody = try #require(item.out.components(separatedBy: "\r\n\r\n").last)
        let seen = try JSONSerialization.jsonObject(with: Data(seenBody.utf8)) as? [String: Any]
        #expect(seen?["httpMethod"] as? String == "GET")
        #expect(seen?["resource"] as? String == "/items/{id}")
        #expect(seen?["id"] as? String == "7")
        #expect(seen?["tags"] as? [String] == ["a", "b"])
        #expect(seen?["sourceIp"] as? String == "203.0.113.7")

        // The Python function, by its FunctionName, through boto3 and the Invoke API behind nginx.
        let (status, body) = try await boto3Invoke(nginx.base, "echo-us-east-1", payload: #"{"from": "boto3"}"#)
        #expect(status == 200)
        #expect((body?["echo"] as? [String: Any])?["from"] as? String == "boto3")
        #expect(body?["helloArn"] as? String == "arn:aws:lambda:us-east-1:123456789012:function:HelloFunction")
        #expect(body?["function"] as? String == "echo-us-east-1")

        // The schedule is the host's: its next run is kept beside the store.
        let schedules = try await runProcess(
            "sqlite3",
            [directory.path(".galley/queue.sqlite"), "SELECT function, expression FROM schedules"]
        )
        #expect(schedules.out == "echo-us-east-1|rate(1 day)\n", "\(schedules.err)")

        // What has no local meaning is named, one line, and did not stop anything.
        let lines = server.stderr.split(separator: "\n").filter { $0.contains("Properties.Policies") }
        #expect(
            lines == [
                "galley: \(templateFile): Resources.EchoFunction.Properties.Policies: not mapped (no local meaning); ignored"
            ]
        )
    }

    @Test func aTemplateMistakeStopsTheHostNamingTheField() async throws {
        let broken = try directory.write(
            "broken.yaml",
            Self.template.replacingOccurrences(of: "Timeout: 5", with: "Timeout: 5000")
        )
        let result = try await runGalley(["serve", "--template", broken, "--port", "0"])
        #expect(result.status == 2)
        #expect(
            result.err.contains("galley: \(broken): Globals.Function.Timeout: must be at most 900 seconds, found 5000"),
            "\(result.err)"
        )
        let unknown = try await runGalley(["list", "--template", templateFile, "--parameter-overrides", "Greting=Hi"])
        #expect(unknown.status != 0)
        #expect(
            unknown.err.contains("'Greting', which the template does not declare (it declares Greeting)"),
            "\(unknown.err)"
        )
    }

    @Test func aHandOffToAnOlderGalleyFullSaysSo() async throws {
        // `swift run galley …` rebuilds only galley: the galley-full beside it may be older.
        let folder = directory.path("bin")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["galley", "galley-full"] {
            try FileManager.default.copyItem(
                atPath: Binaries.directory.appending(path: name).path,
                toPath: "\(folder)/\(name)"
            )
        }
        let fresh = try await runProcess("\(folder)/galley", ["list", "--template", templateFile])
        #expect(fresh.status == 0, "\(fresh.err)")
        #expect(!fresh.err.contains("was built before this galley"))
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -600)],
            ofItemAtPath: "\(folder)/galley-full"
        )
        let stale = try await runProcess("\(folder)/galley", ["list", "--template", templateFile])
        #expect(stale.status == 0, "\(stale.err)")
        #expect(
            stale.err.contains(
                "galley: \(folder)/galley-full was built before this galley and may run older functions"
            ),
            "\(stale.err)"
        )
        try FileManager.default.removeItem(atPath: "\(folder)/galley-full")
        let missing = try await runProcess("\(folder)/galley", ["list", "--template", templateFile])
        #expect(missing.status == 2)
        #expect(missing.err.contains("is an AWS SAM template, which needs galley-full beside galley"), "\(missing.err)")
    }

    @Test func invokeRunsAFunctionOfTheTemplate() async throws {
        let result = try await runGalley(
            ["invoke", "HelloFunction", "--template", templateFile],
            stdin: #"{"name": "Grace"}"#
        )
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out == #"{"message":"Hello, Grace!"}"# + "\n" || result.out == #"{"message":"Hello, Grace!"}"#)
    }
}
