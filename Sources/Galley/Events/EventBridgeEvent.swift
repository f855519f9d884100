/// An event from an EventBridge bus or rule, whose `detail` decodes as `Detail`.
///
/// ```swift
/// struct OrderPlaced: Codable, Sendable { var orderId: String }
/// typealias Event = EventBridgeEvent<OrderPlaced>
/// ```
public struct EventBridgeEvent<Detail: Codable & Sendable>: Codable, Sendable {
    public var version: String
    public var id: String
    public var detailType: String
    public var source: String
    public var account: String
    /// ISO 8601, like `2026-11-30T09:00:00Z`.
    public var time: String
    public var region: String
    public var resources: [String]
    public var detail: Detail

    enum CodingKeys: String, CodingKey {
        case version, id, source, account, time, region, resources, detail
        case detailType = "detail-type"
    }
}

extension EventBridgeEvent: Equatable where Detail: Equatable {}

/// The empty `detail` of a scheduled event.
public struct EmptyDetail: Codable, Sendable, Equatable {
    public init() {}
}

/// What an EventBridge schedule rule (`rate(…)`, `cron(…)`) sends: `detail-type` is
/// `Scheduled Event`, `source` is `aws.events`, `resources` holds the rule's ARN.
public typealias ScheduledEvent = EventBridgeEvent<EmptyDetail>
