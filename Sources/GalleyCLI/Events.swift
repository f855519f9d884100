import ArgumentParser
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print a realistic sample event of an AWS source, to use as an event file.",
        discussion: """
            Like `sam local generate-event`: with no option each prints a realistic event (fresh ids and times), \
            and options change its fields. Each decodes into its type in the Galley module (S3Event, SQSEvent, …).
            """,
        subcommands: [
            S3.self, SQS.self, SNS.self, DynamoDB.self, Kinesis.self, EventBridge.self, Schedule.self,
            APIGateway.self, HTTP.self, ALB.self, Cognito.self, CloudWatchLogs.self,
        ]
    )

    struct HTTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http",
            abstract: "Print an API Gateway HTTP API (payload 2.0) event for a request.",
            discussion: """
                When runtime.json (--config) has a route that matches, the event carries its routeKey and path parameters, \
                exactly as `galley serve` would build it.
                """
        )

        @OptionGroup var request: Request

        @Option(name: .long, help: "The runtime configuration file whose routes are matched, if it exists.")
        var config = "runtime.json"

        func run() async throws {
            try await reportingFailures {
                let (path, query) = HTTPEventBuilder.split(target: request.path)
                var builder = HTTPEventBuilder(
                    method: request.method,
                    path: path,
                    query: query,
                    headers: request.headers,
                    body: request.body.map { Array($0.utf8) }
                )
                // Routes are matched when the configuration exists; a broken one is reported, not skipped.
                if FileManager.default.fileExists(atPath: config) {
                    let configuration: RuntimeConfiguration
                    do throws(ConfigurationError) {
                        configuration = try RuntimeConfiguration.load(from: config)
                    } catch {
                        throw Failure(error.description)
                    }
                    builder.route = RouteTable(configuration: configuration).match(method: builder.method, path: path)
                }
                StandardStreams.writeLine(try Events.encoder.encode(builder.build()))
            }
        }
    }
}

extension Events {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func write(_ event: JSONValue) throws {
        StandardStreams.writeLine(try encoder.encode(event))
    }

    /// `--method`, `--path`, `--body` and `--header`, for the HTTP sources.
    struct Request: ParsableArguments {
        @Option(name: .long, help: "The HTTP method.")
        var method: String = "GET"

        @Option(name: .long, help: "The path, with an optional ?query.")
        var path = "/hello"

        @Option(name: .long, help: "The request body.")
        var body: String?

        @Option(name: .long, help: "A header as Name:Value; repeat for more.")
        var header: [String] = []

        mutating func validate() throws {
            guard path.hasPrefix("/") else { throw ValidationError("--path must start with '/', e.g. /hello") }
            for item in header where !item.contains(":") {
                throw ValidationError("--header '\(item)' must be Name:Value")
            }
            method = method.uppercased()
        }

        /// The headers as name and value.
        var headers: [(String, String)] {
            header.map { item in
                let colon = item.firstIndex(of: ":")!
                return (String(item[..<colon]), String(item[item.index(after: colon)...].drop { $0 == " " }))
            }
        }
    }

    /// `--region` and `--account`, for every source's ARNs.
    struct Place: ParsableArguments {
        @Option(name: .long, help: "The AWS region in ARNs and fields.")
        var region = ARN.region

        @Option(name: .long, help: "The 12-digit AWS account id in ARNs.")
        var account = ARN.account

        func validate() throws {
            guard account.count == 12, account.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
            else {
                throw ValidationError("--account must be 12 digits, e.g. 123456789012")
            }
            guard region.wholeMatch(of: /[a-z]{2}(-[a-z]+)+-[0-9]+/) != nil else {
                throw ValidationError("--region must be a region name, e.g. us-east-1")
            }
        }

        var place: SampleEvents.Place {
            var place = SampleEvents.Place()
            place.region = region
            place.account = account
            return place
        }
    }

    struct S3: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "s3",
            abstract: "Print an S3 object notification (S3Event)."
        )

        @Option(name: .long, help: "The bucket.") var bucket = "example-bucket"
        @Option(name: .long, help: "The object key, as written (the event carries it URL-encoded).") var key =
            "test/key.txt"
        @Option(name: .long, help: "ObjectCreated:Put, ObjectCreated:Copy, ObjectRemoved:Delete, …") var eventName =
            "ObjectCreated:Put"
        @Option(name: .long, help: "The object's size in bytes.") var size: Int64 = 1024
        @OptionGroup var place: Place

        func validate() throws {
            guard
                eventName.wholeMatch(
                    of:
                        /(ObjectCreated|ObjectRemoved|ObjectRestore|Replication|LifecycleExpiration|LifecycleTransition|IntelligentTiering|ObjectTagging|ObjectAcl|ReducedRedundancyLostObject):[A-Za-z*]+/
                ) != nil
            else {
                throw ValidationError("--event-name must be an S3 event name without 's3:', e.g. ObjectCreated:Put")
            }
            guard size >= 0 else { throw ValidationError("--size must not be negative") }
        }

        func run() async throws {
            try Events.write(
                SampleEvents.s3(bucket: bucket, key: key, eventName: eventName, size: size, at: place.place)
            )
        }
    }

    struct SQS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sqs",
            abstract: "Print a batch of SQS messages (SQSEvent)."
        )

        @Option(name: .long, help: "A message body; repeat for a batch of several.") var body: [String] = []
        @Option(name: .long, help: "The queue's name.") var queue = "example-queue"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(
                SampleEvents.sqs(bodies: body.isEmpty ? [#"{"orderId": "1234"}"#] : body, queue: queue, at: place.place)
            )
        }
    }

    struct SNS: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sns",
            abstract: "Print an SNS notification (SNSEvent)."
        )

        @Option(name: .long, help: "The message.") var message = "Hello from SNS!"
        @Option(name: .long, help: "The subject.") var subject = "TestInvoke"
        @Option(name: .long, help: "The topic's name.") var topic = "example-topic"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(SampleEvents.sns(message: message, subject: subject, topic: topic, at: place.place))
        }
    }

    struct DynamoDB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dynamodb",
            abstract: "Print a DynamoDB stream record of a change (DynamoDBEvent)."
        )

        @Option(name: .long, help: "INSERT, MODIFY or REMOVE.") var eventName = "INSERT"
        @Option(name: .long, help: "The table.") var table = "example-table"
        @Option(name: .long, help: "The numeric key's attribute name.") var keyName = "Id"
        @Option(name: .long, help: "The numeric key's value.") var key = "101"
        @Option(name: .long, help: "A string attribute of the item as Name=Value; repeat for more.")
        var attribute: [String] = []
        @OptionGroup var place: Place

        func validate() throws {
            guard ["INSERT", "MODIFY", "REMOVE"].contains(eventName) else {
                throw ValidationError("--event-name must be INSERT, MODIFY or REMOVE")
            }
            guard key.wholeMatch(of: /-?[0-9]+(\.[0-9]+)?/) != nil else {
                throw ValidationError("--key must be a number (the key attribute is of type N)")
            }
            for item in attribute where !item.contains("=") {
                throw ValidationError("--attribute '\(item)' must be Name=Value")
            }
        }

        func run() async throws {
            var item: [String: String] = [:]
            for pair in attribute {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                item[String(parts[0])] = String(parts[1])
            }
            try Events.write(
                SampleEvents.dynamoDB(
                    table: table,
                    eventName: eventName,
                    keyName: keyName,
                    key: key,
                    item: attribute.isEmpty ? ["Message": "New item!"] : item,
                    at: place.place
                )
            )
        }
    }

    struct Kinesis: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kinesis",
            abstract: "Print a batch of Kinesis stream records (KinesisEvent)."
        )

        @Option(name: .long, help: "A record's data as text (the event carries it base64-encoded); repeat for more.")
        var data: [String] = []
        @Option(name: .long, help: "The stream's name.") var stream = "example-stream"
        @Option(name: .long, help: "The partition key.") var partitionKey = "partitionKey-03"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(
                SampleEvents.kinesis(
                    data: data.isEmpty ? ["Hello, this is a test."] : data,
                    stream: stream,
                    partitionKey: partitionKey,
                    at: place.place
                )
            )
        }
    }

    struct EventBridge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eventbridge",
            abstract: "Print an EventBridge event (EventBridgeEvent<Detail>)."
        )

        @Option(name: .long, help: "The event's source.") var source = "com.example.orders"
        @Option(name: .long, help: "The event's detail-type.") var detailType = "Order Placed"
        @Option(name: .long, help: "The detail, a JSON object.") var detail = #"{"orderId": "1234", "amount": 42}"#
        @OptionGroup var place: Place

        func validate() throws {
            guard case .object = try? JSONDecoder().decode(JSONValue.self, from: Data(detail.utf8)) else {
                throw ValidationError("--detail must be a JSON object, e.g. '{\"orderId\": \"1234\"}'")
            }
        }

        func run() async throws {
            let detail = try JSONDecoder().decode(JSONValue.self, from: Data(detail.utf8))
            try Events.write(
                SampleEvents.eventBridge(source: source, detailType: detailType, detail: detail, at: place.place)
            )
        }
    }

    struct Schedule: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule",
            abstract: "Print what an EventBridge schedule rule sends (ScheduledEvent)."
        )

        @Option(name: .long, help: "The rule's name.") var rule = "example-schedule"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(SampleEvents.schedule(rule: rule, at: place.place))
        }
    }

    struct APIGateway: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apigateway",
            abstract: "Print an API Gateway REST API proxy event, payload 1.0 (APIGatewayRequest)."
        )

        @OptionGroup var request: Request
        @Option(name: .long, help: "The resource's path template, e.g. /hello/{name}; the path by default.")
        var resource: String?
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(
                SampleEvents.apiGateway(
                    method: request.method,
                    target: request.path,
                    resource: resource,
                    headers: request.headers,
                    body: request.body,
                    at: place.place
                )
            )
        }
    }

    struct ALB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "alb",
            abstract: "Print an Application Load Balancer request (ALBTargetGroupRequest)."
        )

        @OptionGroup var request: Request
        @Option(name: .long, help: "The target group's name.") var targetGroup = "example-targets"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(
                SampleEvents.alb(
                    method: request.method,
                    target: request.path,
                    headers: request.headers,
                    body: request.body ?? "",
                    targetGroup: targetGroup,
                    at: place.place
                )
            )
        }
    }

    struct Cognito: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cognito",
            abstract: "Print a Cognito user pool trigger's event (CognitoUserPoolEvent)."
        )

        @Option(
            name: .long,
            help: ArgumentHelp(
                "The trigger.",
                discussion: SampleEvents.cognitoTriggers.keys.sorted().joined(separator: ", ")
            )
        )
        var trigger = "pre-signup"
        @Option(name: .long, help: "The user name.") var userName = "ada"
        @Option(name: .long, help: "The user's email.") var email = "ada@example.com"
        @Option(name: .long, help: "The user pool id.") var userPool = "us-east-1_EXAMPLE"
        @OptionGroup var place: Place

        func validate() throws {
            guard SampleEvents.cognitoTriggers[trigger] != nil else {
                let names = SampleEvents.cognitoTriggers.keys.sorted().joined(separator: ", ")
                throw ValidationError("--trigger must be one of \(names)")
            }
        }

        func run() async throws {
            try Events.write(
                SampleEvents.cognito(
                    trigger: trigger,
                    userName: userName,
                    email: email,
                    userPool: userPool,
                    at: place.place
                )
            )
        }
    }

    struct CloudWatchLogs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cloudwatch-logs",
            abstract: "Print a CloudWatch Logs subscription delivery, gzip and base64 (CloudWatchLogsEvent)."
        )

        @Option(name: .long, help: "A log message; repeat for more.") var message: [String] = []
        @Option(name: .long, help: "The log group.") var logGroup = "/aws/lambda/example"
        @OptionGroup var place: Place

        func run() async throws {
            try Events.write(
                try SampleEvents.cloudWatchLogs(
                    messages: message.isEmpty
                        ? ["[ERROR] First test message", "[ERROR] Second test message"] : message,
                    logGroup: logGroup,
                    at: place.place
                )
            )
        }
    }
}
