/// A batch of changes from a DynamoDB stream.
public struct DynamoDBEvent: Codable, Sendable, Equatable {
    public struct Record: Codable, Sendable, Equatable {
        public var eventID: String
        /// `INSERT`, `MODIFY` or `REMOVE`.
        public var eventName: String
        public var eventVersion: String
        public var eventSource: String
        public var awsRegion: String
        public var dynamodb: StreamRecord
        public var eventSourceARN: String
    }

    public struct StreamRecord: Codable, Sendable, Equatable {
        /// Seconds since 1970.
        public var approximateCreationDateTime: Double?
        public var keys: [String: DynamoDBAttributeValue]
        /// Present for `NEW_IMAGE` and `NEW_AND_OLD_IMAGES` streams, except on `REMOVE`.
        public var newImage: [String: DynamoDBAttributeValue]?
        /// Present for `OLD_IMAGE` and `NEW_AND_OLD_IMAGES` streams, except on `INSERT`.
        public var oldImage: [String: DynamoDBAttributeValue]?
        public var sequenceNumber: String
        public var sizeBytes: Int
        /// `KEYS_ONLY`, `NEW_IMAGE`, `OLD_IMAGE` or `NEW_AND_OLD_IMAGES`.
        public var streamViewType: String

        enum CodingKeys: String, CodingKey {
            case approximateCreationDateTime = "ApproximateCreationDateTime"
            case keys = "Keys"
            case newImage = "NewImage"
            case oldImage = "OldImage"
            case sequenceNumber = "SequenceNumber"
            case sizeBytes = "SizeBytes"
            case streamViewType = "StreamViewType"
        }
    }

    public var records: [Record]

    enum CodingKeys: String, CodingKey {
        case records = "Records"
    }
}

/// One attribute of a DynamoDB item in its typed JSON form: `{"S": "text"}`, `{"N": "42"}`, …
///
/// Numbers stay strings, as DynamoDB sends them, so that no precision is lost.
public indirect enum DynamoDBAttributeValue: Codable, Sendable, Equatable {
    case string(String)
    case number(String)
    /// Base64.
    case binary(String)
    case boolean(Bool)
    case null
    case list([DynamoDBAttributeValue])
    case map([String: DynamoDBAttributeValue])
    case stringSet([String])
    case numberSet([String])
    /// Base64 each.
    case binarySet([String])

    enum CodingKeys: String, CodingKey {
        case string = "S"
        case number = "N"
        case binary = "B"
        case boolean = "BOOL"
        case null = "NULL"
        case list = "L"
        case map = "M"
        case stringSet = "SS"
        case numberSet = "NS"
        case binarySet = "BS"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.allKeys.count == 1, let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "A DynamoDB attribute value has exactly one of S, N, B, BOOL, NULL, L, M, SS, NS, BS"
                )
            )
        }
        switch key {
        case .string: self = .string(try container.decode(String.self, forKey: key))
        case .number: self = .number(try container.decode(String.self, forKey: key))
        case .binary: self = .binary(try container.decode(String.self, forKey: key))
        case .boolean: self = .boolean(try container.decode(Bool.self, forKey: key))
        case .null: self = .null
        case .list: self = .list(try container.decode([DynamoDBAttributeValue].self, forKey: key))
        case .map: self = .map(try container.decode([String: DynamoDBAttributeValue].self, forKey: key))
        case .stringSet: self = .stringSet(try container.decode([String].self, forKey: key))
        case .numberSet: self = .numberSet(try container.decode([String].self, forKey: key))
        case .binarySet: self = .binarySet(try container.decode([String].self, forKey: key))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .string(let value): try container.encode(value, forKey: .string)
        case .number(let value): try container.encode(value, forKey: .number)
        case .binary(let value): try container.encode(value, forKey: .binary)
        case .boolean(let value): try container.encode(value, forKey: .boolean)
        case .null: try container.encode(true, forKey: .null)
        case .list(let value): try container.encode(value, forKey: .list)
        case .map(let value): try container.encode(value, forKey: .map)
        case .stringSet(let value): try container.encode(value, forKey: .stringSet)
        case .numberSet(let value): try container.encode(value, forKey: .numberSet)
        case .binarySet(let value): try container.encode(value, forKey: .binarySet)
        }
    }
}
