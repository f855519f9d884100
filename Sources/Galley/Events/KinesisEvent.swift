#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A batch of records from a Kinesis data stream.
public struct KinesisEvent: Codable, Sendable, Equatable {
    public struct Record: Codable, Sendable, Equatable {
        public var kinesis: Payload
        public var eventSource: String
        public var eventVersion: String
        /// `shardId-000000000000:<sequence number>`.
        public var eventID: String
        public var eventName: String
        public var invokeIdentityArn: String
        public var awsRegion: String
        public var eventSourceARN: String
    }

    public struct Payload: Codable, Sendable, Equatable {
        public var kinesisSchemaVersion: String
        public var partitionKey: String
        public var sequenceNumber: String
        /// The record's bytes, base64-encoded; ``bytes`` decodes them.
        public var data: String
        /// Seconds since 1970, with a fraction.
        public var approximateArrivalTimestamp: Double

        /// The record's bytes, or `nil` when `data` is not base64.
        public var bytes: Data? { Data(base64Encoded: data) }
    }

    public var records: [Record]

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}
