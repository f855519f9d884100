import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where the queue keeps accepted events, dead letters, delivery counters and the schedules' next
/// runs: `queue.sqlite` beside the store (``QueueFile``, one host), or PostgreSQL (several hosts
/// sharing one application, in `galley-full`).
///
/// Every method that changes something returns once the change is durable. ``EventQueue`` decides
/// what happens to an event; a storage only keeps it, so both behave alike by construction.
public protocol QueueStorage: Sendable {
    /// Where the queue is, for messages (a path, or a database URL without its password).
    var location: String { get }

    /// Adds `event` unless the queue is at its bound.
    func accept(_ event: NewQueuedEvent, maxEvents: Int, maxBytes: Int) async throws -> QueueAcceptance

    /// Takes up to `limit` due events of `function` for delivery, oldest due first. Each stays
    /// claimed until ``finish(_:_:)`` or ``release(_:)``; an event whose claimer died is claimed
    /// again with ``QueuedEvent/resumed`` set and that attempt counted.
    func claim(function: String, limit: Int, now: Int64) async throws -> [QueuedEvent]

    /// Claimed events that were not started after all: waiting again, nothing counted.
    func release(_ events: [QueuedEvent]) async throws

    /// Records what became of a claimed event, with its counters and any destination record, in
    /// one transaction.
    func finish(_ event: QueuedEvent, _ outcome: DeliveryOutcome) async throws

    /// Events this storage's previous owner was delivering when it stopped: each counts the
    /// attempt and waits again. Returns how many. (Shared storages take such events over by lease.)
    func recoverInterrupted() async throws -> Int

    /// When the next event of `function` is due, if one waits (now or earlier for an event whose
    /// claimer died).
    func nextDue(function: String) async throws -> Int64?

    /// The functions that have events waiting.
    func functionsWaiting() async throws -> [String]

    /// Queues one run of a schedule when it is due, and advances its next run, in one transaction,
    /// so that one host only runs each period however many share the storage.
    func fire(_ run: ScheduledRun) async throws -> ScheduleStep
    /// The next run recorded for `function`'s schedule, if the recorded expression is `expression`.
    func scheduledRun(function: String, expression: String) async throws -> Int64?

    func deadLetters(function: String) async throws -> [DeadLetter]
    func deadLetter(function: String, id: Int64) async throws -> DeadLetter?
    /// Moves dead letters of `function` (all, or the one `id`) back into the queue as new events,
    /// due at once, with no attempts; returns how many.
    func replay(function: String, id: Int64?, at now: Int64) async throws -> Int
    /// Deletes dead letters of `function` (all, or the one `id`); returns how many.
    func purge(function: String, id: Int64?) async throws -> Int

    /// Events and payload bytes waiting or running, all functions together.
    func totals() async throws -> (events: Int, bytes: Int)
    /// Per function: waiting and running events, the oldest one's age, the counters and dead letters.
    func status(now: Int64) async throws -> [QueueFunctionStatus]
}

/// An event as accepted, before the queue gives it an id.
public struct NewQueuedEvent: Sendable {
    public var function: String
    public var requestID: String
    public var payload: Data
    public var clientContext: String?
    public var traceHeaders: [String: String]
    /// Unix epoch milliseconds; the event is due at once.
    public var acceptedAt: Int64

    public init(
        function: String,
        requestID: String,
        payload: Data,
        clientContext: String? = nil,
        traceHeaders: [String: String] = [:],
        acceptedAt: Int64
    ) {
        self.function = function
        self.requestID = requestID
        self.payload = payload
        self.clientContext = clientContext
        self.traceHeaders = traceHeaders
        self.acceptedAt = acceptedAt
    }

    /// A destination record (`onSuccess`, `onFailure`) as a new event of `function`.
    static func record(_ record: Data, to function: String, at now: Int64) -> NewQueuedEvent {
        NewQueuedEvent(function: function, requestID: Invocation.makeRequestID(), payload: record, acceptedAt: now)
    }
}

/// An event waiting in the queue, as read back when it is delivered.
public struct QueuedEvent: Sendable {
    public let id: Int64
    public let function: String
    public let requestID: String
    public let payload: Data
    public let clientContext: String?
    /// When the first caller's 202 went out, Unix epoch milliseconds.
    public let acceptedAt: Int64
    /// Attempts that ran the function (or were cut short by a host crash).
    public let attempts: Int
    /// Times the function was busy or gone when the event was due.
    public let throttles: Int
    /// The caller's trace headers.
    public var traceHeaders: [String: String]
    /// Claimed from a host that stopped while delivering it: a possible duplicate.
    public var resumed: Bool

    public init(
        id: Int64,
        function: String,
        requestID: String,
        payload: Data,
        clientContext: String?,
        acceptedAt: Int64,
        attempts: Int,
        throttles: Int,
        traceHeaders: [String: String] = [:],
        resumed: Bool = false
    ) {
        self.id = id
        self.function = function
        self.requestID = requestID
        self.payload = payload
        self.clientContext = clientContext
        self.acceptedAt = acceptedAt
        self.attempts = attempts
        self.throttles = throttles
        self.traceHeaders = traceHeaders
        self.resumed = resumed
    }
}

/// The caller's trace headers as a queue keeps them.
public enum StoredTraceHeaders {
    /// Trace headers as `name: value` lines (names and values hold no newline: they came as HTTP
    /// headers), or `nil` for none.
    public static func encode(_ headers: [String: String]) -> String? {
        headers.isEmpty
            ? nil : headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "\n")
    }

    public static func decode(_ text: String?) -> [String: String] {
        var headers: [String: String] = [:]
        for line in (text ?? "").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            headers[String(line[..<colon])] = String(value)
        }
        return headers
    }
}

public enum QueueAcceptance: Sendable, Equatable {
    case accepted
    /// The queue holds `maxEvents` events or `maxBytes` bytes already.
    case full(events: Int, bytes: Int)
}

/// What became of a claimed event.
public enum DeliveryOutcome: Sendable {
    /// The function succeeded: the event is gone, `onSuccess` (if any) gets a record.
    case delivered(onSuccess: NewQueuedEvent?)
    /// The function failed and has attempts left: due again at `due`.
    case retry(due: Int64)
    /// The function was busy or gone: due again at `due`, no attempt counted. `counted` adds it to
    /// the function's throttles.
    case hold(due: Int64, counted: Bool)
    /// A dead letter, sent on to `onFailure` (if any). `countsAttempt` when this attempt ran the
    /// function.
    case deadLetter(DeadLetterRecord, onFailure: NewQueuedEvent?, countsAttempt: Bool)
}

/// A dead letter as written.
public struct DeadLetterRecord: Sendable {
    public var failedAt: Int64
    public var condition: String
    public var attempts: Int
    public var errorType: String?
    /// Lambda's on-failure destination record.
    public var record: Data
}

/// One look at a schedule: ``QueueStorage/fire(_:)``'s question.
public struct ScheduledRun: Sendable {
    public var function: String
    /// The schedule's expression: a recorded next run of another expression does not count.
    public var expression: String
    public var now: Int64
    /// The run after `now`, counted from `anchor` (a recorded run, or now when none is).
    public var next: @Sendable (_ anchor: Int64) -> Int64?
    /// The event of the run due at `time`.
    public var event: @Sendable (_ time: Int64) -> NewQueuedEvent

    /// What this look does, given the next run recorded for `expression` (`nil`: none, or one of
    /// another expression), for a storage to apply in one transaction: the step, the next run to
    /// record (if any), and the run to queue (if any).
    public func decide(recorded: Int64?) -> (step: ScheduleStep, record: Int64?, queue: NewQueuedEvent?) {
        guard let recorded else {
            guard let first = next(now) else { return (.finished, nil, nil) }
            return (.waiting(next: first), first, nil)
        }
        guard recorded <= now else { return (.waiting(next: recorded), nil, nil) }
        return (.fired(run: recorded), next(recorded) ?? Int64.max, event(recorded))
    }
}

/// What ``QueueStorage/fire(_:)`` found.
public enum ScheduleStep: Sendable, Equatable {
    /// Not due until `next`.
    case waiting(next: Int64)
    /// The run due at `run` is queued (by this host).
    case fired(run: Int64)
    /// The schedule has no run left.
    case finished
}

/// What a group commit holds between commits: the items waiting, and whether a committer is at
/// work. The first item added while none is starts one (``add(_:)`` says so); the committer takes
/// batch after batch with ``next()`` and stops when it gets an empty one, so no item is left
/// behind and two committers never run at once.
public struct GroupCommit<Item: Sendable>: Sendable {
    private var waiting: [Item] = []
    private var committing = false

    public init() {}

    /// Adds `item`; returns whether the caller must start the committer.
    public mutating func add(_ item: Item) -> Bool {
        waiting.append(item)
        defer { committing = true }
        return !committing
    }

    /// The next batch; empty when nothing waits, and then the committer's work is over.
    public mutating func next() -> [Item] {
        if waiting.isEmpty { committing = false }
        defer { waiting = [] }
        return waiting
    }
}

/// The storage `configuration`'s queue lives in: PostgreSQL when the store is there (and this
/// binary can reach it), else `queue.sqlite` beside the store.
public enum QueueStorageOpener {
    private static let postgresFactory = Mutex<
        (@Sendable (String, RuntimeConfiguration.Queue) throws -> any QueueStorage)?
    >(
        nil
    )

    /// Makes `open` the way to a queue in PostgreSQL (`galley-full` does, first thing).
    public static func registerPostgres(
        _ open: @escaping @Sendable (_ url: String, _ queue: RuntimeConfiguration.Queue) throws -> any QueueStorage
    ) {
        postgresFactory.withLock { $0 = open }
    }

    /// Opens the queue of `configuration`. `create` false opens an existing file only (`nil` when
    /// there is none: an empty queue), for `galley queue` and `galley dlq`.
    static func open(
        _ configuration: RuntimeConfiguration,
        configurationFile: String,
        create: Bool = true
    ) throws -> (any QueueStorage)? {
        if let url = StoreOpener.postgresURL(configuration) {
            guard let open = postgresFactory.withLock({ $0 }) else {
                throw StoreError(
                    .unavailable,
                    "the queue is in PostgreSQL, which this galley binary does not include: run galley-full"
                )
            }
            return try open(url, configuration.queue)
        }
        let path = EventQueue.file(configuration, configurationFile: configurationFile)
        guard create || FileManager.default.fileExists(atPath: path) else { return nil }
        return try QueueFile(path: path)
    }
}
