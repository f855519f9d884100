#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A batch of SQS messages, as an SQS event source mapping delivers it.
///
/// Return an ``SQSBatchResponse`` naming the messages that failed (with `ReportBatchItemFailures`
/// on the mapping) so that only those are delivered again.
public struct SQSEvent: Codable, Sendable, Equatable {
    public struct Message: Codable, Sendable, Equatable {
        public var messageId: String
        public var receiptHandle: String
        public var body: String
        /// `ApproximateReceiveCount`, `SentTimestamp`, `SenderId`, `ApproximateFirstReceiveTimestamp`, …
        public var attributes: [String: String]
        public var messageAttributes: [String: MessageAttribute]
        public var md5OfBody: String
        public var eventSource: String
        public var eventSourceARN: String
        public var awsRegion: String

        /// The body decoded from JSON.
        public func decodeBody<Value: Decodable>(as type: Value.Type) throws -> Value {
            try JSONDecoder().decode(Value.self, from: Data(body.utf8))
        }
    }

    public struct MessageAttribute: Codable, Sendable, Equatable {
        public var stringValue: String?
        /// Base64.
        public var binaryValue: String?
        public var stringListValues: [String]?
        public var binaryListValues: [String]?
        /// `String`, `Number`, `Binary`, or one of them with a custom suffix.
        public var dataType: String
    }

    public var records: [Message]

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}

/// What a function returns for an ``SQSEvent`` (or a Kinesis or DynamoDB stream batch) to report
/// partial failure: the ids of the messages to deliver again. An empty list means all succeeded.
public struct SQSBatchResponse: Codable, Sendable, Equatable {
    public struct ItemFailure: Codable, Sendable, Equatable {
        /// The message's `messageId` (a stream record's sequence number for Kinesis and DynamoDB).
        public var itemIdentifier: String

        public init(itemIdentifier: String) {
            self.itemIdentifier = itemIdentifier
        }
    }

    public var batchItemFailures: [ItemFailure]

    public init(batchItemFailures: [ItemFailure] = []) {
        self.batchItemFailures = batchItemFailures
    }

    /// A response failing the messages with these ids.
    public init(failing identifiers: some Sequence<String>) {
        self.batchItemFailures = identifiers.map(ItemFailure.init(itemIdentifier:))
    }
}
