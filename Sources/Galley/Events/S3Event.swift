/// What S3 sends a function for object notifications (`s3:ObjectCreated:*`, `s3:ObjectRemoved:*`, …).
///
/// Object keys arrive URL-encoded, as S3 sends them: a space is `+`. ``S3Event/Object/decodedKey``
/// gives the key as written.
public struct S3Event: Codable, Sendable, Equatable {
    public struct Record: Codable, Sendable, Equatable {
        public var eventVersion: String
        public var eventSource: String
        public var awsRegion: String
        /// ISO 8601, like `1970-01-01T00:00:00.000Z`.
        public var eventTime: String
        /// Like `ObjectCreated:Put`.
        public var eventName: String
        public var userIdentity: UserIdentity
        public var requestParameters: RequestParameters
        public var responseElements: [String: String]
        public var s3: Entity
    }

    public struct UserIdentity: Codable, Sendable, Equatable {
        public var principalId: String
    }

    public struct RequestParameters: Codable, Sendable, Equatable {
        public var sourceIPAddress: String
    }

    public struct Entity: Codable, Sendable, Equatable {
        public var s3SchemaVersion: String
        public var configurationId: String
        public var bucket: Bucket
        public var object: Object
    }

    public struct Bucket: Codable, Sendable, Equatable {
        public var name: String
        public var ownerIdentity: UserIdentity
        public var arn: String
    }

    public struct Object: Codable, Sendable, Equatable {
        /// URL-encoded, as S3 sends it.
        public var key: String
        /// Absent for deletions.
        public var size: Int64?
        public var eTag: String?
        public var versionId: String?
        public var sequencer: String

        /// The key as written: `+` is a space and `%XX` sequences are decoded (a malformed one is
        /// kept as it is).
        public var decodedKey: String {
            PercentEncoding.decode(key[...], plusIsSpace: true)
        }
    }

    public var records: [Record]

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}
