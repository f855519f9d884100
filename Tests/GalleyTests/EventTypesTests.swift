import Foundation
import Galley
import GalleyHost
import Testing

/// Every sample event `galley events` prints decodes into its type in the Galley module, with the
/// fields a handler reads.
struct EventTypesTests {
    func decode<Event: Decodable>(_ type: Event.Type, _ value: JSONValue) throws -> Event {
        try JSONDecoder().decode(Event.self, from: try JSONEncoder().encode(value))
    }

    @Test func s3KeysAreDecodedAsWritten() throws {
        let event = try decode(S3Event.self, SampleEvents.s3(bucket: "photos", key: "2026/Ada Lovelace+%.jpg"))
        let record = try #require(event.records.first)
        #expect(record.eventSource == "aws:s3")
        #expect(record.s3.bucket.name == "photos")
        #expect(record.s3.object.key == "2026/Ada+Lovelace%2B%25.jpg")
        #expect(record.s3.object.decodedKey == "2026/Ada Lovelace+%.jpg")
        #expect(record.s3.object.size == 1024)
        let removal = try decode(S3Event.self, SampleEvents.s3(eventName: "ObjectRemoved:Delete"))
        #expect(removal.records.first?.s3.object.size == nil)
    }

    @Test func aMalformedEscapeInAnS3KeyIsKept() throws {
        var event = try decode(S3Event.self, SampleEvents.s3())
        event.records[0].s3.object.key = "a%2x%"
        #expect(event.records[0].s3.object.decodedKey == "a%2x%")
    }

    @Test func sqsMessagesAndTheirBatchResponse() throws {
        let event = try decode(SQSEvent.self, SampleEvents.sqs(bodies: [#"{"orderId":"7"}"#, "two"], queue: "orders"))
        #expect(event.records.count == 2)
        #expect(event.records[0].eventSourceARN == "arn:aws:sqs:us-east-1:123456789012:orders")
        #expect(event.records[0].md5OfBody == "b226ff79367a1a2acaa354084850b24a")
        struct Order: Decodable { var orderId: String }
        #expect(try event.records[0].decodeBody(as: Order.self).orderId == "7")
        #expect(event.records[0].messageId != event.records[1].messageId)

        let response = SQSBatchResponse(failing: [event.records[1].messageId])
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(response)) as? [String: Any]
        let failures = json?["batchItemFailures"] as? [[String: String]]
        #expect(failures == [["itemIdentifier": event.records[1].messageId]])
    }

    @Test func snsNotification() throws {
        let event = try decode(SNSEvent.self, SampleEvents.sns(message: "hi", subject: nil, topic: "alerts"))
        let message = try #require(event.records.first?.sns)
        #expect(message.message == "hi")
        #expect(message.subject == nil)
        #expect(message.topicArn == "arn:aws:sns:us-east-1:123456789012:alerts")
        #expect(message.messageAttributes?["Test"]?.value == "TestString")
    }

    @Test(arguments: ["INSERT", "MODIFY", "REMOVE"])
    func dynamoDBImagesFollowTheChange(eventName: String) throws {
        let event = try decode(
            DynamoDBEvent.self,
            SampleEvents.dynamoDB(eventName: eventName, keyName: "Id", key: "7", item: ["Name": "Ada"])
        )
        let change = try #require(event.records.first)
        #expect(change.eventName == eventName)
        #expect(change.dynamodb.keys["Id"] == .number("7"))
        #expect((change.dynamodb.newImage != nil) == (eventName != "REMOVE"))
        #expect((change.dynamodb.oldImage != nil) == (eventName != "INSERT"))
        if let image = change.dynamodb.newImage { #expect(image["Name"] == .string("Ada")) }
    }

    @Test func dynamoDBAttributeValuesRoundTrip() throws {
        let json = #"""
            {"M":{"s":{"S":"x"},"n":{"N":"1.5"},"b":{"B":"AQI="},"t":{"BOOL":true},"z":{"NULL":true},
            "l":{"L":[{"S":"a"},{"N":"2"}]},"ss":{"SS":["a","b"]},"ns":{"NS":["1"]},"bs":{"BS":["AQ=="]}}}
            """#
        let value = try JSONDecoder().decode(DynamoDBAttributeValue.self, from: Data(json.utf8))
        guard case .map(let fields) = value else {
            Issue.record("not a map: \(value)")
            return
        }
        #expect(fields["n"] == .number("1.5"))
        #expect(fields["z"] == .null)
        #expect(fields["l"] == .list([.string("a"), .number("2")]))
        #expect(fields["bs"] == .binarySet(["AQ=="]))
        let again = try JSONDecoder().decode(DynamoDBAttributeValue.self, from: JSONEncoder().encode(value))
        #expect(again == value)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(DynamoDBAttributeValue.self, from: Data(#"{"S":"a","N":"1"}"#.utf8))
        }
    }

    @Test func kinesisDataIsDecoded() throws {
        let event = try decode(KinesisEvent.self, SampleEvents.kinesis(data: ["one", "two"], stream: "clicks"))
        #expect(event.records.map { $0.kinesis.bytes.map { String(decoding: $0, as: UTF8.self) } } == ["one", "two"])
        #expect(event.records[0].eventSourceARN.hasSuffix(":stream/clicks"))
    }

    @Test func eventBridgeDetailDecodesAsItsType() throws {
        struct Order: Codable, Sendable, Equatable {
            var orderId: String
            var amount: Int
        }
        let event = try decode(EventBridgeEvent<Order>.self, SampleEvents.eventBridge())
        #expect(event.detailType == "Order Placed")
        #expect(event.detail == Order(orderId: "1234", amount: 42))
        let schedule = try decode(ScheduledEvent.self, SampleEvents.schedule(rule: "nightly"))
        #expect(schedule.source == "aws.events")
        #expect(schedule.resources == ["arn:aws:events:us-east-1:123456789012:rule/nightly"])
    }

    @Test func restAPIRequest() throws {
        let event = try decode(
            APIGatewayRequest.self,
            SampleEvents.apiGateway(
                method: "POST",
                target: "/orders/7?x=1&x=2",
                resource: "/orders/{id}",
                headers: [("X-Tag", "a"), ("X-Tag", "b")],
                body: "{}"
            )
        )
        #expect(event.httpMethod == "POST")
        #expect(event.path == "/orders/7")
        #expect(event.resource == "/orders/{id}")
        #expect(event.queryStringParameters?["x"] == "2")
        #expect(event.multiValueQueryStringParameters?["x"] == ["1", "2"])
        #expect(event.multiValueHeaders?["X-Tag"] == ["a", "b"])
        #expect(event.bodyData == Data("{}".utf8))
    }

    @Test func albRequest() throws {
        let event = try decode(ALBTargetGroupRequest.self, SampleEvents.alb(target: "/health?full=1"))
        #expect(event.path == "/health")
        #expect(event.queryStringParameters == ["full": "1"])
        #expect(event.headers?["x-forwarded-proto"] == "http")
        #expect(event.requestContext.elb.targetGroupArn.contains(":targetgroup/example-targets/"))
    }

    @Test(arguments: SampleEvents.cognitoTriggers.keys.sorted())
    func cognitoTriggers(trigger: String) throws {
        let event = try decode(CognitoUserPoolEvent.self, SampleEvents.cognito(trigger: trigger, userName: "ada"))
        #expect(event.triggerSource == SampleEvents.cognitoTriggers[trigger])
        #expect(event.userName == "ada")
    }

    @Test func aCognitoResponseIsTheEventBack() throws {
        var event = try decode(CognitoUserPoolEvent.self, SampleEvents.cognito(trigger: "pre-signup"))
        event.response.autoConfirmUser = true
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any]
        #expect((json?["response"] as? [String: Any])?["autoConfirmUser"] as? Bool == true)
        #expect(json?["triggerSource"] as? String == "PreSignUp_SignUp")
    }

    @Test func cloudWatchLogsAreDecompressed() throws {
        let event = try decode(
            CloudWatchLogsEvent.self,
            try SampleEvents.cloudWatchLogs(messages: ["one", "two"], logGroup: "/aws/lambda/orders")
        )
        let logs = try event.decode()
        #expect(logs.logGroup == "/aws/lambda/orders")
        #expect(logs.logEvents.map(\.message) == ["one", "two"])
    }

    @Test func damagedCloudWatchLogsDataIsAnError() throws {
        var event = try decode(CloudWatchLogsEvent.self, try SampleEvents.cloudWatchLogs())
        var bytes = try #require(Data(base64Encoded: event.awslogs.data))
        bytes.removeLast(12)
        event.awslogs.data = bytes.base64EncodedString()
        #expect(throws: (any Error).self) { try event.decode() }
        event.awslogs.data = "not base64!"
        #expect(throws: DecodingError.self) { try event.decode() }
        event.awslogs.data = Data("plain text".utf8).base64EncodedString()
        #expect(throws: (any Error).self) { try event.decode() }
    }
}
