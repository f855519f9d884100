import Galley

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Realistic events of the common AWS sources, as `galley events SOURCE` prints them (in the
/// manner of `sam local generate-event`): every field the service sends, ids and times fresh for
/// each event, and options to change what matters.
package enum SampleEvents {
    /// Where the sample resources live.
    package struct Place: Sendable {
        package var region = ARN.region
        package var account = ARN.account
        package init() {}
    }

    package static func s3(
        bucket: String = "example-bucket",
        key: String = "test/key.txt",
        eventName: String = "ObjectCreated:Put",
        size: Int64 = 1024,
        at place: Place = .init()
    ) -> JSONValue {
        let isRemoval = eventName.hasPrefix("ObjectRemoved")
        var object: [String: JSONValue] = [
            "key": .string(PercentEncoding.encode(key, keeping: "-_.*/", spaceAsPlus: true)),
            "sequencer": .string(hex(count: 18).uppercased()),
        ]
        if !isRemoval {
            object["size"] = .integer(size)
            object["eTag"] = .string(hex(count: 32))
        }
        return [
            "Records": [
                [
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": .string(place.region),
                    "eventTime": .string(isoTime(milliseconds: true)),
                    "eventName": .string(eventName),
                    "userIdentity": ["principalId": "EXAMPLE"],
                    "requestParameters": ["sourceIPAddress": "127.0.0.1"],
                    "responseElements": [
                        "x-amz-request-id": .string(hex(count: 16).uppercased()),
                        "x-amz-id-2": .string(randomBase64(count: 48)),
                    ],
                    "s3": [
                        "s3SchemaVersion": "1.0",
                        "configurationId": "galley-notification",
                        "bucket": [
                            "name": .string(bucket),
                            "ownerIdentity": ["principalId": "EXAMPLE"],
                            "arn": .string("arn:aws:s3:::\(bucket)"),
                        ],
                        "object": .object(object),
                    ],
                ]
            ]
        ]
    }

    package static func sqs(
        bodies: [String] = [#"{"orderId": "1234"}"#],
        queue: String = "example-queue",
        at place: Place = .init()
    ) -> JSONValue {
        let now = Timestamp.epochMilliseconds()
        let records: [JSONValue] = bodies.map { body in
            [
                "messageId": .string(UUID().uuidString.lowercased()),
                "receiptHandle": .string(randomBase64(count: 96)),
                "body": .string(body),
                "attributes": [
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": .string(String(now)),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": .string(String(now + 2)),
                ],
                "messageAttributes": [:],
                "md5OfBody": .string(MD5.hex(Array(body.utf8))),
                "eventSource": "aws:sqs",
                "eventSourceARN": .string("arn:aws:sqs:\(place.region):\(place.account):\(queue)"),
                "awsRegion": .string(place.region),
            ]
        }
        return ["Records": .array(records)]
    }

    package static func sns(
        message: String = "Hello from SNS!",
        subject: String? = "TestInvoke",
        topic: String = "example-topic",
        at place: Place = .init()
    ) -> JSONValue {
        let topicARN = "arn:aws:sns:\(place.region):\(place.account):\(topic)"
        let subscription = "\(topicARN):\(UUID().uuidString.lowercased())"
        var sns: [String: JSONValue] = [
            "SignatureVersion": "1",
            "Timestamp": .string(isoTime(milliseconds: true)),
            "Signature": .string(randomBase64(count: 256)),
            "SigningCertUrl": .string(
                "https://sns.\(place.region).amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
            ),
            "MessageId": .string(UUID().uuidString.lowercased()),
            "Message": .string(message),
            "MessageAttributes": [
                "Test": ["Type": "String", "Value": "TestString"]
            ],
            "Type": "Notification",
            "UnsubscribeUrl": .string(
                "https://sns.\(place.region).amazonaws.com/?Action=Unsubscribe&SubscriptionArn=\(subscription)"
            ),
            "TopicArn": .string(topicARN),
        ]
        if let subject { sns["Subject"] = .string(subject) }
        return [
            "Records": [
                [
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": .string(subscription),
                    "EventSource": "aws:sns",
                    "Sns": .object(sns),
                ]
            ]
        ]
    }

    /// `eventName` is `INSERT`, `MODIFY` or `REMOVE`; the stream shows new and old images.
    package static func dynamoDB(
        table: String = "example-table",
        eventName: String = "INSERT",
        keyName: String = "Id",
        key: String = "101",
        item: [String: String] = ["Message": "New item!"],
        at place: Place = .init()
    ) -> JSONValue {
        let keys: JSONValue = [keyName: ["N": .string(key)]]
        var image: [String: JSONValue] = [keyName: ["N": .string(key)]]
        for (name, value) in item { image[name] = ["S": .string(value)] }
        var old = image
        for (name, value) in item { old[name] = ["S": .string(value + " (before)")] }
        var record: [String: JSONValue] = [
            "ApproximateCreationDateTime": .integer(Timestamp.epochMilliseconds() / 1000),
            "Keys": keys,
            "SequenceNumber": .string(String(UInt64.random(in: 100_000_000_000...999_999_999_999))),
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        ]
        if eventName != "REMOVE" { record["NewImage"] = .object(image) }
        if eventName != "INSERT" { record["OldImage"] = .object(old) }
        let stream = "\(isoTime(milliseconds: true).dropLast())"
        return [
            "Records": [
                [
                    "eventID": .string(hex(count: 32)),
                    "eventName": .string(eventName),
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": .string(place.region),
                    "dynamodb": .object(record),
                    "eventSourceARN": .string(
                        "arn:aws:dynamodb:\(place.region):\(place.account):table/\(table)/stream/\(stream)"
                    ),
                ]
            ]
        ]
    }

    package static func kinesis(
        data: [String] = ["Hello, this is a test."],
        stream: String = "example-stream",
        partitionKey: String = "partitionKey-03",
        at place: Place = .init()
    ) -> JSONValue {
        let records: [JSONValue] = data.enumerated().map { offset, text in
            let sequence =
                "4959010359745960906" + String(UInt64.random(in: 1_000_000_000_000...9_999_999_999_999))
                + String(offset)
            return [
                "kinesis": [
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": .string(partitionKey),
                    "sequenceNumber": .string(sequence),
                    "data": .string(Data(text.utf8).base64EncodedString()),
                    "approximateArrivalTimestamp": .double(Double(Timestamp.epochMilliseconds()) / 1000),
                ],
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": .string("shardId-000000000000:\(sequence)"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": .string("arn:aws:iam::\(place.account):role/lambda-role"),
                "awsRegion": .string(place.region),
                "eventSourceARN": .string("arn:aws:kinesis:\(place.region):\(place.account):stream/\(stream)"),
            ]
        }
        return ["Records": .array(records)]
    }

    /// `detail` is JSON text; it must be an object.
    package static func eventBridge(
        source: String = "com.example.orders",
        detailType: String = "Order Placed",
        detail: JSONValue = ["orderId": "1234", "amount": 42],
        resources: [String] = [],
        at place: Place = .init()
    ) -> JSONValue {
        [
            "version": "0",
            "id": .string(UUID().uuidString.lowercased()),
            "detail-type": .string(detailType),
            "source": .string(source),
            "account": .string(place.account),
            "time": .string(isoTime(milliseconds: false)),
            "region": .string(place.region),
            "resources": .array(resources.map(JSONValue.string)),
            "detail": detail,
        ]
    }

    /// What an EventBridge schedule rule sends.
    package static func schedule(rule: String = "example-schedule", at place: Place = .init()) -> JSONValue {
        eventBridge(
            source: "aws.events",
            detailType: "Scheduled Event",
            detail: [:],
            resources: ["arn:aws:events:\(place.region):\(place.account):rule/\(rule)"],
            at: place
        )
    }

    /// An API Gateway REST API proxy event (payload 1.0). `resource` defaults to `path`.
    package static func apiGateway(
        method: String = "GET",
        target: String = "/hello",
        resource: String? = nil,
        headers: [(String, String)] = [],
        body: String? = nil,
        at place: Place = .init()
    ) -> JSONValue {
        let (path, query) = HTTPEventBuilder.split(target: target)
        let (single, multiple) = headerMaps(defaultHeaders(place) + headers, lowercased: false)
        let (singleQuery, multipleQuery) = queryMaps(query)
        let now = Timestamp.epochMilliseconds()
        let requestID = UUID().uuidString.lowercased()
        return [
            "resource": .string(resource ?? path),
            "path": .string(path),
            "httpMethod": .string(method),
            "headers": single,
            "multiValueHeaders": multiple,
            "queryStringParameters": singleQuery,
            "multiValueQueryStringParameters": multipleQuery,
            "pathParameters": .null,
            "stageVariables": .null,
            "requestContext": [
                "accountId": .string(place.account),
                "apiId": "1234567890",
                "resourceId": "123456",
                "resourcePath": .string(resource ?? path),
                "httpMethod": .string(method),
                "path": .string("/prod" + path),
                "stage": "prod",
                "requestId": .string(requestID),
                "extendedRequestId": .string(requestID),
                "identity": [
                    "sourceIp": "127.0.0.1",
                    "userAgent": "Custom User Agent String",
                    "accountId": .null,
                    "caller": .null,
                    "user": .null,
                    "userArn": .null,
                    "cognitoIdentityPoolId": .null,
                    "cognitoIdentityId": .null,
                    "cognitoAuthenticationType": .null,
                    "cognitoAuthenticationProvider": .null,
                    "accessKey": .null,
                ],
                "protocol": "HTTP/1.1",
                "requestTime": .string(HTTPEventBuilder.format(milliseconds: now)),
                "requestTimeEpoch": .integer(now),
                "domainName": .string("1234567890.execute-api.\(place.region).amazonaws.com"),
            ],
            "body": body.map(JSONValue.string) ?? .null,
            "isBase64Encoded": false,
        ]
    }

    /// An Application Load Balancer request (single-value headers, as a target group sends by default).
    package static func alb(
        method: String = "GET",
        target: String = "/hello",
        headers: [(String, String)] = [],
        body: String = "",
        targetGroup: String = "example-targets",
        at place: Place = .init()
    ) -> JSONValue {
        let (path, query) = HTTPEventBuilder.split(target: target)
        let albHeaders: [(String, String)] = [
            ("accept", "*/*"), ("host", "example-alb-123456789.\(place.region).elb.amazonaws.com"),
            ("user-agent", "curl/8.5.0"), ("x-amzn-trace-id", "Root=1-\(hex(count: 8))-\(hex(count: 24))"),
            ("x-forwarded-for", "127.0.0.1"), ("x-forwarded-port", "80"), ("x-forwarded-proto", "http"),
        ]
        let (single, _) = headerMaps(albHeaders + headers, lowercased: true)
        let (singleQuery, _) = queryMaps(query)
        return [
            "requestContext": [
                "elb": [
                    "targetGroupArn": .string(
                        "arn:aws:elasticloadbalancing:\(place.region):\(place.account):targetgroup/\(targetGroup)/\(hex(count: 16))"
                    )
                ]
            ],
            "httpMethod": .string(method),
            "path": .string(path),
            "queryStringParameters": singleQuery == .null ? [:] : singleQuery,
            "headers": single,
            "body": .string(body),
            "isBase64Encoded": false,
        ]
    }

    /// The Cognito triggers `galley events cognito --trigger` knows, by their option name.
    package static let cognitoTriggers: [String: String] = [
        "pre-signup": "PreSignUp_SignUp",
        "post-confirmation": "PostConfirmation_ConfirmSignUp",
        "pre-authentication": "PreAuthentication_Authentication",
        "post-authentication": "PostAuthentication_Authentication",
        "pre-token-generation": "TokenGeneration_HostedAuth",
        "custom-message": "CustomMessage_SignUp",
        "define-auth-challenge": "DefineAuthChallenge_Authentication",
        "create-auth-challenge": "CreateAuthChallenge_Authentication",
        "verify-auth-challenge": "VerifyAuthChallengeResponse_Authentication",
        "migrate-user": "UserMigration_Authentication",
    ]

    package static func cognito(
        trigger: String = "pre-signup",
        userName: String = "ada",
        email: String = "ada@example.com",
        userPool: String = "us-east-1_EXAMPLE",
        at place: Place = .init()
    ) -> JSONValue {
        let attributes: JSONValue = [
            "sub": .string(UUID().uuidString.lowercased()),
            "email": .string(email),
            "email_verified": "true",
            "cognito:user_status": "CONFIRMED",
        ]
        var request: [String: JSONValue] = ["userAttributes": attributes]
        var response: [String: JSONValue] = [:]
        switch trigger {
        case "pre-signup":
            request["userAttributes"] = ["email": .string(email)]
            request["validationData"] = .null
            request["clientMetadata"] = [:]
            response = ["autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false]
        case "post-confirmation":
            request["clientMetadata"] = [:]
        case "pre-authentication":
            request["validationData"] = [:]
            request["userNotFound"] = false
        case "post-authentication":
            request["newDeviceUsed"] = true
            request["clientMetadata"] = [:]
        case "pre-token-generation":
            request["groupConfiguration"] = [
                "groupsToOverride": ["readers"], "iamRolesToOverride": [], "preferredRole": .null,
            ]
            request["clientMetadata"] = [:]
            response = ["claimsOverrideDetails": .null]
        case "custom-message":
            request["codeParameter"] = "{####}"
            request["usernameParameter"] = "{username}"
            request["linkParameter"] = "{##Click Here##}"
            request["clientMetadata"] = [:]
            response = ["smsMessage": .null, "emailMessage": .null, "emailSubject": .null]
        case "define-auth-challenge":
            request["session"] = [
                ["challengeName": "PASSWORD_VERIFIER", "challengeResult": true, "challengeMetadata": .null]
            ]
            request["userNotFound"] = false
            response = ["challengeName": .null, "issueTokens": .null, "failAuthentication": .null]
        case "create-auth-challenge":
            request["challengeName"] = "CUSTOM_CHALLENGE"
            request["session"] = []
            request["userNotFound"] = false
            response = [
                "publicChallengeParameters": [:], "privateChallengeParameters": [:], "challengeMetadata": .null,
            ]
        case "verify-auth-challenge":
            request["privateChallengeParameters"] = ["answer": "42"]
            request["challengeAnswer"] = "42"
            request["userNotFound"] = false
            request["clientMetadata"] = [:]
            response = ["answerCorrect": false]
        case "migrate-user":
            request = ["password": "correct horse battery staple", "validationData": [:], "clientMetadata": [:]]
            response = [
                "userAttributes": .null, "finalUserStatus": .null, "messageAction": .null,
                "desiredDeliveryMediums": .null, "forceAliasCreation": .null,
            ]
        default:
            break
        }
        return [
            "version": "1",
            "triggerSource": .string(cognitoTriggers[trigger] ?? trigger),
            "region": .string(place.region),
            "userPoolId": .string(userPool),
            "userName": .string(userName),
            "callerContext": ["awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "1example23456789"],
            "request": .object(request),
            "response": .object(response),
        ]
    }

    /// A CloudWatch Logs subscription delivery of `messages`, gzip-compressed and base64-encoded.
    package static func cloudWatchLogs(
        messages: [String] = ["[ERROR] First test message", "[ERROR] Second test message"],
        logGroup: String = "/aws/lambda/example",
        logStream: String = "2026/11/30/[$LATEST]0123456789abcdef0123456789abcdef",
        at place: Place = .init()
    ) throws -> JSONValue {
        let now = Timestamp.epochMilliseconds()
        let events: [JSONValue] = messages.enumerated().map { offset, message in
            [
                "id": .string(String(UInt64.random(in: 10_000_000_000...99_999_999_999)) + String(offset)),
                "timestamp": .integer(now + Int64(offset)),
                "message": .string(message),
            ]
        }
        let payload: JSONValue = [
            "messageType": "DATA_MESSAGE",
            "owner": .string(place.account),
            "logGroup": .string(logGroup),
            "logStream": .string(logStream),
            "subscriptionFilters": ["galley-filter"],
            "logEvents": .array(events),
        ]
        let json = try JSONEncoder().encode(payload)
        return ["awslogs": ["data": .string(Data(try Gzip.compress(Array(json))).base64EncodedString())]]
    }

    // MARK: - Pieces

    static func defaultHeaders(_ place: Place) -> [(String, String)] {
        [
            ("Accept", "*/*"),
            ("Host", "1234567890.execute-api.\(place.region).amazonaws.com"),
            ("User-Agent", "Custom User Agent String"),
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Proto", "https"),
        ]
    }

    /// Last value wins in the single map; every value in the multiple one.
    static func headerMaps(_ headers: [(String, String)], lowercased: Bool) -> (JSONValue, JSONValue) {
        let pairs = lowercased ? headers.map { ($0.0.lowercased(), $0.1) } : headers
        return maps(HTTPEventBuilder.group(pairs))
    }

    static func queryMaps(_ query: String) -> (JSONValue, JSONValue) {
        guard !query.isEmpty else { return (.null, .null) }
        return maps(HTTPEventBuilder.group(HTTPEventBuilder(method: "GET", path: "/", query: query).queryPairs()))
    }

    static func maps(_ groups: [(name: String, values: [String])]) -> (JSONValue, JSONValue) {
        var single: [String: JSONValue] = [:]
        var multiple: [String: JSONValue] = [:]
        for (name, values) in groups {
            single[name] = .string(values.last!)
            multiple[name] = .array(values.map(JSONValue.string))
        }
        return (.object(single), .object(multiple))
    }

    /// `2026-11-30T09:00:00Z`, or with `.123` milliseconds.
    static func isoTime(milliseconds withMilliseconds: Bool) -> String {
        let text = Timestamp.iso8601(epochMilliseconds: Timestamp.epochMilliseconds())
        return withMilliseconds ? text : text.dropLast(5) + "Z"
    }

    static func hex(count: Int) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<count).map { _ in digits[Int.random(in: 0..<16)] })
    }

    static func randomBase64(count: Int) -> String {
        String(Data((0..<(count * 3 / 4)).map { _ in UInt8.random(in: 0...255) }).base64EncodedString().prefix(count))
    }
}
