import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Tells what an event of any common AWS source says, decoded into its type in the Galley
/// module: `{"source": "s3", "type": "S3Event", "summary": "…"}`, and for the batch sources
/// (SQS, Kinesis, DynamoDB) an empty `batchItemFailures`, as an ``SQSBatchResponse`` reports
/// that every record succeeded. It logs the summary too.
///
/// Try it on what `galley events SOURCE` prints:
/// `galley events s3 --key "photos/Ada Lovelace.jpg" | galley invoke digest`.
struct Digest: ByteHandler {
    struct Answer: Encodable {
        var source: String
        var type: String
        var summary: String
        var batchItemFailures: [SQSBatchResponse.ItemFailure]?
    }

    /// Just enough of any event to tell its source.
    struct Shape: Decodable {
        struct Record: Decodable {
            var eventSource: String?
            var EventSource: String?
        }
        struct RequestContext: Decodable {
            struct ELB: Decodable {}
            var elb: ELB?
        }
        var Records: [Record]?
        var awslogs: [String: String]?
        var triggerSource: String?
        var detailType: String?
        var requestContext: RequestContext?
        var routeKey: String?
        var httpMethod: String?

        enum CodingKeys: String, CodingKey {
            case Records, awslogs, triggerSource, requestContext, routeKey, httpMethod
            case detailType = "detail-type"
        }
    }

    /// Any `detail`: Digest reads only the envelope.
    struct AnyDetail: Codable, Sendable {}

    init(context: InitContext) {}

    func handle(_ payload: Data, context: Context) async throws -> Data {
        let answer = try digest(payload)
        context.logger.info("\(answer.type): \(answer.summary)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(answer)
    }

    func digest(_ payload: Data) throws -> Answer {
        let decoder = JSONDecoder()
        let shape = try decoder.decode(Shape.self, from: payload)
        if let record = shape.Records?.first {
            switch record.eventSource ?? record.EventSource {
            case "aws:s3":
                let event = try decoder.decode(S3Event.self, from: payload)
                let lines = event.records.map { record in
                    let object = record.s3.object
                    let size = object.size.map { " (\($0) bytes)" } ?? ""
                    return "\(record.eventName) \(record.s3.bucket.name)/\(object.decodedKey)\(size)"
                }
                return Answer(source: "s3", type: "S3Event", summary: lines.joined(separator: "; "))
            case "aws:sqs":
                let event = try decoder.decode(SQSEvent.self, from: payload)
                let queue = event.records.first.map {
                    $0.eventSourceARN.split(separator: ":").last.map(String.init) ?? ""
                }
                let bodies = event.records.map(\.body).joined(separator: ", ")
                return Answer(
                    source: "sqs",
                    type: "SQSEvent",
                    summary: "\(event.records.count) message(s) from \(queue ?? ""): \(bodies)",
                    batchItemFailures: []
                )
            case "aws:sns":
                let event = try decoder.decode(SNSEvent.self, from: payload)
                let lines = event.records.map { "\($0.sns.subject ?? "(no subject)"): \($0.sns.message)" }
                return Answer(source: "sns", type: "SNSEvent", summary: lines.joined(separator: "; "))
            case "aws:dynamodb":
                let event = try decoder.decode(DynamoDBEvent.self, from: payload)
                let lines = event.records.map { record in
                    let keys = record.dynamodb.keys.sorted { $0.key < $1.key }.map {
                        "\($0.key)=\(Self.text($0.value))"
                    }
                    return "\(record.eventName) \(keys.joined(separator: ","))"
                }
                return Answer(
                    source: "dynamodb",
                    type: "DynamoDBEvent",
                    summary: lines.joined(separator: "; "),
                    batchItemFailures: []
                )
            case "aws:kinesis":
                let event = try decoder.decode(KinesisEvent.self, from: payload)
                let lines = event.records.map { String(decoding: $0.kinesis.bytes ?? Data(), as: UTF8.self) }
                return Answer(
                    source: "kinesis",
                    type: "KinesisEvent",
                    summary: lines.joined(separator: "; "),
                    batchItemFailures: []
                )
            case let other:
                throw FunctionError("records from \(other ?? "an unnamed source")", type: "UnknownEventSource")
            }
        }
        if shape.awslogs != nil {
            let logs = try decoder.decode(CloudWatchLogsEvent.self, from: payload).decode()
            let lines = logs.logEvents.map(\.message).joined(separator: "; ")
            return Answer(source: "cloudwatch-logs", type: "CloudWatchLogsEvent", summary: "\(logs.logGroup): \(lines)")
        }
        if shape.triggerSource != nil {
            let event = try decoder.decode(CognitoUserPoolEvent.self, from: payload)
            return Answer(
                source: "cognito",
                type: "CognitoUserPoolEvent",
                summary: "\(event.triggerSource) for \(event.userName ?? "?") in \(event.userPoolId)"
            )
        }
        if let detailType = shape.detailType {
            if detailType == "Scheduled Event" {
                let event = try decoder.decode(ScheduledEvent.self, from: payload)
                return Answer(
                    source: "schedule",
                    type: "ScheduledEvent",
                    summary: event.resources.joined(separator: ", ")
                )
            }
            let event = try decoder.decode(EventBridgeEvent<AnyDetail>.self, from: payload)
            return Answer(
                source: "eventbridge",
                type: "EventBridgeEvent",
                summary: "\(event.source): \(event.detailType)"
            )
        }
        if shape.requestContext?.elb != nil {
            let event = try decoder.decode(ALBTargetGroupRequest.self, from: payload)
            return Answer(source: "alb", type: "ALBTargetGroupRequest", summary: "\(event.httpMethod) \(event.path)")
        }
        if shape.routeKey != nil {
            let event = try decoder.decode(APIGatewayV2Request.self, from: payload)
            return Answer(
                source: "http",
                type: "APIGatewayV2Request",
                summary: "\(event.requestContext.http.method) \(event.rawPath)"
            )
        }
        if shape.httpMethod != nil {
            let event = try decoder.decode(APIGatewayRequest.self, from: payload)
            return Answer(source: "apigateway", type: "APIGatewayRequest", summary: "\(event.httpMethod) \(event.path)")
        }
        throw FunctionError("not an event of a source Digest knows", type: "UnknownEventSource")
    }

    static func text(_ value: DynamoDBAttributeValue) -> String {
        switch value {
        case .string(let text), .number(let text), .binary(let text): text
        case .boolean(let flag): String(flag)
        default: "…"
        }
    }
}
