import Synchronization

/// Something that happened to an invocation, published as it happens.
public enum InvocationEvent: Sendable {
    /// An invocation began (on any path: the Invoke API, a route, the queue, a schedule, the CLI).
    case start(function: String, requestID: String)
    /// A log line, as it arrives: the handler's own, its stdout, and the platform lines. Only live
    /// feeds get lines one by one; observers get them in ``lines(_:)`` batches.
    case line(Line)
    /// Log lines as the log writes them, several at once (an invocation's held lines at its end).
    case lines(Batch)
    /// An invocation ended: what `REPORT` says.
    case end(Summary)
    /// An invocation was refused: the function was at its `concurrency`.
    case throttle(function: String)
    /// The async queue took, retried or dead-lettered an event of `function`.
    case queue(function: String, QueueStep)

    public struct Line: Sendable, Encodable {
        public var function: String
        public var requestID: String?
        public var text: String
        /// Unix epoch milliseconds.
        public var time: Int64
    }

    /// Lines of one invocation written together.
    public struct Batch: Sendable {
        public var function: String
        public var requestID: String?
        public var texts: [String]
        /// When the log wrote them, Unix epoch milliseconds.
        public var time: Int64
    }

    public struct Summary: Sendable, Encodable {
        public var function: String
        public var requestID: String
        public var durationMs: Double
        public var billedMs: Int
        public var initDurationMs: Double?
        public var memorySizeMB: Int
        public var maxMemoryUsedMB: Int
        /// `success`, `error` (a function error or a fault) or `timeout`.
        public var status: String
        /// The error object's `errorType`, for any error.
        public var errorType: String?
        public var time: Int64
    }

    public enum QueueStep: String, Sendable {
        case accepted, retried, deadLettered
    }

    var function: String {
        switch self {
        case .start(let function, _), .throttle(let function), .queue(let function, _): function
        case .line(let line): line.function
        case .lines(let batch): batch.function
        case .end(let summary): summary.function
        }
    }
}

/// The one stream of invocation events that the log, the metrics, the ring of recent invocations
/// and the live feed observe.
///
/// Observers that are called inline (``observe(_:)``) must be quick and never block: they run on
/// the invocation's own path. Subscribers (``subscribe(function:buffer:)``, the live feed) get their
/// own bounded buffer: one that does not keep up loses the oldest events, counted, and never slows
/// an invocation or grows the host's memory.
public final class InvocationEvents: Sendable {
    private let observers = Mutex<[@Sendable (InvocationEvent) -> Void]>([])
    private let subscribers = Mutex<[Int: Subscriber]>([:])
    private let subscriberCount = Atomic<Int>(0)
    private let observerCount = Atomic<Int>(0)
    private let nextID = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)

    private struct Subscriber: Sendable {
        var function: String?
        var continuation: AsyncStream<InvocationEvent>.Continuation
        var dropped: Subscription.Drops
    }

    public init() {}

    /// Adds an observer called inline, in order, for every event.
    public func observe(_ observer: @escaping @Sendable (InvocationEvent) -> Void) {
        observers.withLock { $0.append(observer) }
        observerCount.add(1, ordering: .relaxed)
    }

    /// Whether anyone listens: publishers skip building events nobody would see.
    var isObserved: Bool { hasObservers || hasSubscribers }

    /// Whether observers listen (they get lines in batches).
    var hasObservers: Bool { observerCount.load(ordering: .relaxed) > 0 }

    /// Whether a live feed listens (it gets lines one by one).
    var hasSubscribers: Bool { subscriberCount.load(ordering: .relaxed) > 0 }

    func publish(_ event: InvocationEvent) {
        if case .line = event {
            // One by one for live feeds only: observers get lines batched.
        } else if hasObservers {
            for observer in observers.withLock({ $0 }) { observer(event) }
        }
        if case .lines = event { return }
        guard hasSubscribers else { return }
        let targets = subscribers.withLock { $0.values.filter { $0.function == nil || $0.function == event.function } }
        for target in targets {
            if case .dropped = target.continuation.yield(event) {
                target.dropped.count.add(1, ordering: .relaxed)
                dropped.add(1, ordering: .relaxed)
            }
        }
    }

    /// Events dropped for subscribers that did not keep up, since the host started.
    public var droppedEvents: Int { dropped.load(ordering: .relaxed) }

    /// A live feed of `function`'s events (every function's when `nil`), holding at most `buffer`.
    public func subscribe(function: String?, buffer: Int = 1000) -> Subscription {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(
            of: InvocationEvent.self,
            bufferingPolicy: .bufferingNewest(buffer)
        )
        let drops = Subscription.Drops()
        subscribers.withLock { $0[id] = Subscriber(function: function, continuation: continuation, dropped: drops) }
        subscriberCount.add(1, ordering: .relaxed)
        continuation.onTermination = { [weak self] _ in
            guard let self, self.subscribers.withLock({ $0.removeValue(forKey: id) }) != nil else { return }
            self.subscriberCount.subtract(1, ordering: .relaxed)
        }
        return Subscription(events: stream, drops: drops)
    }

    /// Ends every live feed: a host that stops does not wait for followers to hang up.
    public func finishSubscriptions() {
        let all = subscribers.withLock { $0.values.map(\.continuation) }
        for continuation in all { continuation.finish() }
    }

    /// One subscriber's events and how many it lost.
    public struct Subscription: Sendable {
        public let events: AsyncStream<InvocationEvent>
        let drops: Drops

        public var dropped: Int { drops.count.load(ordering: .relaxed) }

        final class Drops: Sendable {
            let count = Atomic<Int>(0)
        }
    }
}
