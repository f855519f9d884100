import Foundation
import GalleyHost
import GalleyTemplates
import Testing

/// AWS SAM templates read as deployments: what maps, what resolves, and what is named instead.
struct SAMTemplateTests {
    static let template = """
        AWSTemplateFormatVersion: '2010-09-09'
        Transform: AWS::Serverless-2016-10-31
        Parameters:
          Stage:
            Type: String
            Default: local
            AllowedValues: [local, prod]
          Greeting:
            Type: String
            Default: Hello
        Conditions:
          IsProd: !Equals [!Ref Stage, prod]
        Mappings:
          Levels:
            local: { Log: debug }
            prod: { Log: warn }
        Globals:
          Function:
            Timeout: 5
            MemorySize: 256
            Environment:
              Variables:
                STAGE: !Ref Stage
                SHARED: global
        Resources:
          HelloFunction:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: !Sub "hello-${Stage}"
              Runtime: provided.al2023
              Handler: Hello
              Timeout: 10
              ReservedConcurrentExecutions: 7
              Layers: [arn:aws:lambda:us-east-1:123456789012:layer:x:1]
              Environment:
                Variables:
                  GREETING: !Ref Greeting
                  SHARED: local
                  WORKER: !GetAtt Worker.Arn
                  REGION_URL: !Sub "https://${AWS::Region}.example.com/${!Literal}"
                  MODE: !If [IsProd, strict, relaxed]
                  LOG: !FindInMap [Levels, !Ref Stage, Log]
                  PATH_LIST: !Join [":", [a, b]]
                  TABLE: !Ref Table
              Events:
                Greet:
                  Type: HttpApi
                  Properties: { Path: "/hello/{name}", Method: get }
                Everything:
                  Type: Api
                  Properties: { Path: "/v1/{proxy+}", Method: any }
              EventInvokeConfig:
                MaximumRetryAttempts: 1
                MaximumEventAgeInSeconds: 120
                DestinationConfig:
                  OnFailure: { Type: Lambda, Destination: !GetAtt Worker.Arn }
                  OnSuccess: { Type: SQS, Destination: arn:aws:sqs:us-east-1:123456789012:done }
          Worker:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: app.handler
              CodeUri: src/worker
              DeadLetterQueue: { Type: SQS, TargetArn: arn:aws:sqs:us-east-1:123456789012:dlq }
              Events:
                Nightly:
                  Type: ScheduleV2
                  Properties: { ScheduleExpression: "cron(0 3 * * ? *)" }
                Uploads:
                  Type: S3
                  Properties: { Bucket: !Ref Uploads, Events: s3:ObjectCreated:* }
          Node:
            Type: AWS::Serverless::Function
            Properties: { Runtime: nodejs20.x, Handler: index.handler }
          Table:
            Type: AWS::Serverless::SimpleTable
          Uploads:
            Type: AWS::S3::Bucket
        """

    func translate(_ text: String = template, _ overrides: [String: String] = [:]) throws -> RuntimeConfiguration {
        try SAMTemplate.translate(text, file: "template.yaml", overrides: overrides)
    }

    func error(_ text: String, _ overrides: [String: String] = [:]) -> String {
        do {
            _ = try translate(text, overrides)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func functionsMapWithGlobalsUnderTheirOwnProperties() throws {
        let configuration = try translate()
        #expect(configuration.functions.keys.sorted() == ["Worker", "hello-local"])
        let hello = try #require(configuration.functions["hello-local"])
        #expect(hello.handler == "Hello")
        #expect(hello.command == nil)
        #expect(hello.timeout == 10)
        #expect(hello.memory == 256)
        #expect(hello.concurrency == 7)
        #expect(hello.routes.map(\.description) == ["GET /hello/{name}", "ANY /v1/{proxy+}"])
        #expect(hello.routes.map(\.payload) == [.v2, .v1], "an Api (REST) event gets payload 1.0")
        #expect(hello.retries == 1)
        #expect(hello.maxEventAge == 120)
        #expect(hello.onFailure == "Worker")
        #expect(hello.onSuccess == nil)

        let worker = try #require(configuration.functions["Worker"])
        #expect(worker.command == ["python3", "-m", "awslambdaric", "app.handler"])
        #expect(worker.directory == "src/worker")
        #expect(worker.timeout == 5)
        #expect(worker.schedule?.expression == "cron(0 3 * * ? *)")
        #expect(worker.environment == ["STAGE": "local", "SHARED": "global"])
    }

    @Test func intrinsicFunctionsResolveLocally() throws {
        let environment = try #require(try translate().functions["hello-local"]?.environment)
        #expect(environment["GREETING"] == "Hello")
        #expect(environment["STAGE"] == "local")
        #expect(environment["SHARED"] == "local", "a function's own variable wins over Globals'")
        #expect(environment["WORKER"] == "arn:aws:lambda:us-east-1:123456789012:function:Worker")
        #expect(environment["REGION_URL"] == "https://us-east-1.example.com/${Literal}")
        #expect(environment["MODE"] == "relaxed")
        #expect(environment["LOG"] == "debug")
        #expect(environment["PATH_LIST"] == "a:b")
        #expect(environment["TABLE"] == nil)
    }

    @Test func parameterOverridesChooseValues() throws {
        let configuration = try translate(Self.template, ["Stage": "prod", "Greeting": "Hi"])
        let hello = try #require(configuration.functions["hello-prod"])
        #expect(hello.environment["GREETING"] == "Hi")
        #expect(hello.environment["MODE"] == "strict")
        #expect(hello.environment["LOG"] == "warn")
        #expect(
            error(Self.template, ["Stage": "qa"])
                == "template.yaml: Parameters.Stage: 'qa' is not one of its AllowedValues (local, prod)"
        )
        #expect(error(Self.template, ["Stages": "x"]).contains("'Stages', which the template does not declare"))
    }

    @Test func bothOverrideFormsParse() throws {
        #expect(
            try SAMTemplate.parseOverrides("Stage=prod Greeting='Good day'") == [
                "Stage": "prod", "Greeting": "Good day",
            ]
        )
        #expect(
            try SAMTemplate.parseOverrides("ParameterKey=Stage,ParameterValue=prod ParameterKey=A,ParameterValue=b=c")
                == ["Stage": "prod", "A": "b=c"]
        )
        #expect(throws: ConfigurationError.self) { try SAMTemplate.parseOverrides("Stage") }
        #expect(throws: ConfigurationError.self) { try SAMTemplate.parseOverrides("ParameterKey=Stage") }
    }

    @Test func whatCannotBeMappedIsNamedOneLineEach() throws {
        let notes = try translate().notes
        func note(_ fragment: String) -> [String] { notes.filter { $0.contains(fragment) } }
        #expect(note("Resources.HelloFunction.Properties.Layers").count == 1)
        #expect(note("Environment.Variables.TABLE: !Ref Table does not resolve locally").count == 1)
        #expect(note("EventInvokeConfig.DestinationConfig.OnSuccess: a SQS destination").count == 1)
        #expect(note("Resources.Worker.Properties.DeadLetterQueue: failed Event invocations are kept").count == 1)
        #expect(note("Resources.Worker.Properties.Events.Uploads: an event source of type S3").count == 1)
        #expect(note("Resources.Node.Properties.Runtime: 'nodejs20.x' is not served locally").count == 1)
        #expect(note("Resources.Table: AWS::Serverless::SimpleTable has no local counterpart").count == 1)
        #expect(notes.allSatisfy { $0.hasPrefix("template.yaml: ") && !$0.contains("\n") })
    }

    @Test func mistakesNameTheTemplateField() {
        #expect(
            error(Self.template.replacingOccurrences(of: "Timeout: 10", with: "Timeout: 1000"))
                == "template.yaml: Resources.HelloFunction.Properties.Timeout: must be at most 900 seconds, found 1000"
        )
        #expect(
            error(Self.template.replacingOccurrences(of: "Timeout: 10", with: "Timeout: ten"))
                == "template.yaml: Resources.HelloFunction.Properties.Timeout: must be a number, found 'ten'"
        )
        #expect(
            error(Self.template.replacingOccurrences(of: "cron(0 3 * * ? *)", with: "rate(5 minute)")).hasPrefix(
                "template.yaml: Resources.Worker.Properties.Events: "
            )
        )
        #expect(
            error(Self.template.replacingOccurrences(of: "    Default: Hello\n", with: "\n"))
                == "template.yaml: Parameters.Greeting: has no Default; give it a value with --parameter-overrides Greeting=VALUE"
        )
        #expect(error("Resources: [1, 2").hasPrefix("template.yaml: not valid YAML: "))
        #expect(error("Resources: [1, 2").contains("line"))
        #expect(error("Description: nothing") == "template.yaml: Resources: the template has no Resources")
        #expect(
            error("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")
                == "template.yaml: Resources: no AWS::Serverless::Function could be served (see the lines above)"
        )
    }

    @Test func aTemplateIsReadByItsExtension() throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "sam-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appending(path: "template.yaml").path
        try Self.template.write(toFile: file, atomically: true, encoding: .utf8)
        SAMTemplate.registerReader()  // What galley-full does first thing.
        let configuration = try RuntimeConfiguration.load(from: file)
        #expect(configuration.functions["hello-local"] != nil)
        #expect(configuration.notes.first?.hasPrefix(file) == true)
    }
}
