#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The queue read and changed without a running host: `galley queue` and `galley dlq`.
/// A host that is running sees the changes within its poll interval (1 s).
public struct QueueInspector: Sendable {
    let storage: (any QueueStorage)?
    let configuration: RuntimeConfiguration.Queue
    let clock: any QueueClock

    /// The queue of `configuration`; a file that does not exist yet is an empty queue, and is not created.
    public init(
        _ configuration: RuntimeConfiguration,
        configurationFile: String,
        clock: any QueueClock = SystemQueueClock()
    ) throws {
        storage = try QueueStorageOpener.open(configuration, configurationFile: configurationFile, create: false)
        self.configuration = configuration.queue
        self.clock = clock
    }

    /// The same document as `/_galley/queue`.
    public func statusJSON() async -> String {
        await EventQueue.statusJSON(storage: storage, configuration: configuration, now: clock.now())
    }

    /// One row per function that has anything queued, counted or dead-lettered.
    public func status() async throws -> [QueueFunctionStatus] {
        try await storage?.status(now: clock.now()) ?? []
    }

    public func deadLetters(function: String) async throws -> [DeadLetter] {
        try await storage?.deadLetters(function: function) ?? []
    }

    public func deadLetter(function: String, id: Int64) async throws -> DeadLetter? {
        try await storage?.deadLetter(function: function, id: id)
    }

    /// Moves dead letters (all of `function`'s, or the one `id`) back into the queue; returns how many.
    public func replay(function: String, id: Int64?) async throws -> Int {
        try await storage?.replay(function: function, id: id, at: clock.now()) ?? 0
    }

    /// Deletes dead letters (all of `function`'s, or the one `id`); returns how many.
    public func purge(function: String, id: Int64?) async throws -> Int {
        try await storage?.purge(function: function, id: id) ?? 0
    }

    /// ISO 8601 for a record's time.
    public static func format(epochMilliseconds: Int64) -> String {
        Timestamp.iso8601(epochMilliseconds: epochMilliseconds)
    }
}
