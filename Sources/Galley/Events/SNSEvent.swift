/// A notification from an SNS topic the function subscribes to.
public struct SNSEvent: Codable, Sendable, Equatable {
    public struct Record: Codable, Sendable, Equatable {
        public var eventVersion: String
        public var eventSubscriptionArn: String
        public var eventSource: String
        public var sns: Message

        enum CodingKeys: String, CodingKey {
            case eventVersion = "EventVersion"
            case eventSubscriptionArn = "EventSubscriptionArn"
            case eventSource = "EventSource"
            case sns = "Sns"
        }
    }

    public struct Message: Codable, Sendable, Equatable {
        public var signatureVersion: String
        /// ISO 8601.
        public var timestamp: String
        public var signature: String
        public var signingCertUrl: String
        public var messageId: String
        public var message: String
        public var messageAttributes: [String: MessageAttribute]?
        /// `Notification`.
        public var type: String
        public var unsubscribeUrl: String
        public var topicArn: String
        public var subject: String?

        enum CodingKeys: String, CodingKey {
            case signatureVersion = "SignatureVersion"
            case timestamp = "Timestamp"
            case signature = "Signature"
            case signingCertUrl = "SigningCertUrl"
            case messageId = "MessageId"
            case message = "Message"
            case messageAttributes = "MessageAttributes"
            case type = "Type"
            case unsubscribeUrl = "UnsubscribeUrl"
            case topicArn = "TopicArn"
            case subject = "Subject"
        }
    }

    public struct MessageAttribute: Codable, Sendable, Equatable {
        /// `String`, `Number`, `Binary`, `String.Array`.
        public var type: String
        public var value: String

        enum CodingKeys: String, CodingKey {
            case type = "Type"
            case value = "Value"
        }
    }

    public var records: [Record]

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}
