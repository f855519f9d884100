import Galley
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Asynchronous (`Event`) invocations, kept in a ``QueueStorage`` (`queue.sqlite` beside the
/// store, or PostgreSQL shared by several hosts) and delivered through the dispatcher, at least
/// once, as Lambda does.
///
/// - An event is durable (fsynced) before its caller gets 202, and is removed only once an
///   attempt has finished, so a crash of the host at any moment loses no accepted event (one
///   running when the host died is delivered again: a possible duplicate, as in Lambda; on
///   PostgreSQL another host takes it over when its lease runs out).
/// - The queue is bounded (`queue.maxEvents`, `queue.maxBytes`); past the bound callers get 429.
///   Events are read from the file when delivered, so a deep backlog costs disk, not memory.
/// - Per function, queued events use at most `queue.concurrencyShare` of its `concurrency`.
/// - A function error (a timeout or crash included) is retried `retries` times, `retryDelay`
///   seconds apart, doubling; a throttle or host error waits 1 s to 5 min without counting as
///   an attempt. After the last attempt, or past `maxEventAge`, the event becomes a dead letter
///   in Lambda's on-failure format, sent on to `onFailure` if there is one; results go to
///   `onSuccess` in the same format.
/// - Functions with a `schedule` are invoked through the queue, once per period however many hosts
///   share the storage; a run missed while every host was down happens once at start.
public final class EventQueue: Service, Sendable {
    private struct State {
        var running: [String: Int] = [:]
        var deliveries = 0
        var stopping = false
        var drained: [CheckedContinuation<Void, Never>] = []
        var lastSweep: Int64 = 0
    }

    let storage: any QueueStorage
    let dispatcher: Dispatcher
    let clock: any QueueClock
    let logger: Logger
    private let state = Mutex(State())
    private let wakeup = Wakeup()
    private let shutdownRequested = Wakeup()
    /// How often the file is looked at even when nothing is due (for `galley dlq replay` and
    /// events of functions that a reload removed).
    let pollInterval: Int64 = 1000

    /// Opens (creating it if needed) the queue file at `path`.
    public convenience init(
        path: String,
        dispatcher: Dispatcher,
        clock: any QueueClock = SystemQueueClock(),
        logger: Logger,
        recovers: Bool = true
    )
        throws
    {
        self.init(
            storage: try QueueFile(path: path),
            dispatcher: dispatcher,
            clock: clock,
            logger: logger,
            recovers: recovers
        )
    }

    /// Delivers the events kept in `storage`.
    public init(
        storage: any QueueStorage,
        dispatcher: Dispatcher,
        clock: any QueueClock = SystemQueueClock(),
        logger: Logger,
        recovers: Bool = true
    ) {
        self.storage = storage
        self.dispatcher = dispatcher
        self.clock = clock
        self.logger = logger
        self.recovers = recovers
    }

    /// Whether `run` delivers again what a crashed host was delivering.
    private let recovers: Bool

    /// `queue.sqlite` in the storage folder of `configuration`.
    public static func file(_ configuration: RuntimeConfiguration, configurationFile: String) -> String {
        URL(filePath: StoreOpener.storeFile(configuration, configurationFile: configurationFile))
            .deletingLastPathComponent().appending(path: "queue.sqlite").path
    }

    // MARK: - Accepting

    /// Checks and stores an `Event` invocation; when this returns it survives any crash.
    ///
    /// - Throws: the dispatcher's refusals (unknown function, bad or oversized payload), 429 when
    ///   the queue is full, 500 when the file cannot be written.
    public func submit(_ invocation: Invocation) async throws(InvokeError) {
        try dispatcher.validate(invocation)
        let limits = dispatcher.deployment.configuration.queue
        let acceptance: QueueAcceptance
        do {
            let event = NewQueuedEvent(
                function: invocation.function,
                requestID: invocation.requestID,
                payload: invocation.payload,
                clientContext: invocation.clientContext,
                traceHeaders: invocation.traceHeaders,
                acceptedAt: clock.now()
            )
            acceptance = try await storage.accept(event, maxEvents: limits.maxEvents, maxBytes: limits.maxBytes)
        } catch {
            logger.error("RequestId: \(invocation.requestID) could not queue the Event invocation: \(error)")
            throw InvokeError(.service, "The event could not be queued: \(error)")
        }
        if case .accepted = acceptance {
            dispatcher.events.publish(.queue(function: invocation.function, .accepted))
        }
        if case .full(let events, let bytes) = acceptance {
            throw InvokeError(
                .tooManyRequests,
                "Rate Exceeded. The async queue is full: \(events) events, \(bytes) bytes waiting "
                    + "(queue.maxEvents \(limits.maxEvents), queue.maxBytes \(limits.maxBytes)).",
                reason: "FunctionInvocationRateLimitExceeded"
            )
        }
        wakeup.signal()
    }

    // MARK: - Delivering

    /// Delivers until shutdown, then lets running attempts finish; what still waits stays in the
    /// file for the next start.
    public func run() async throws {
        do {
            let interrupted = recovers ? try await storage.recoverInterrupted() : 0
            if interrupted > 0 {
                logger.warning(
                    "queue: \(interrupted) events were being delivered when the host stopped; they are delivered again (possible duplicates)"
                )
            }
            let (events, _) = try await storage.totals()
            if events > 0 { logger.notice("queue: \(events) events waiting in \(storage.location)") }
        } catch {
            logger.error("queue: cannot read \(storage.location): \(error)")
        }
        // Cancelled (another service failed, e.g. the listener could not bind): stop as on shutdown.
        await withTaskCancellationHandler {
            await deliverUntilShutdown()
        } onCancel: {
            self.shutdown()
        }
    }

    private func deliverUntilShutdown() async {
        await withGracefulShutdownHandler {
            while !state.withLock({ $0.stopping }) {
                let next = await tick()
                let cancel = clock.schedule(at: next) { [wakeup] in wakeup.signal() }
                await wakeup.wait()
                cancel()
            }
            await withCheckedContinuation { continuation in
                let done = state.withLock { state in
                    if state.deliveries == 0 { return true }
                    state.drained.append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
            // Stopped early (the host began draining): a service returns only when told to.
            await shutdownRequested.wait()
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Stops delivering and lets ``run()`` return once the running attempts finish.
    public func shutdown() {
        stopDelivering()
        shutdownRequested.signal()
    }

    /// Looks at the queue now: something became due outside it (a replay from the console).
    func wake() {
        wakeup.signal()
    }

    /// Stops starting deliveries; running attempts finish.
    public func stopDelivering() {
        state.withLock { $0.stopping = true }
        wakeup.signal()
    }

    /// One pass: fires due schedules, starts what is due within each function's share, and
    /// returns when to look again.
    func tick() async -> Int64 {
        let now = clock.now()
        var next = now + pollInterval
        let deployment = dispatcher.deployment
        let share = deployment.configuration.queue.concurrencyShare
        for (name, function) in deployment.functions.sorted(by: { $0.key < $1.key }) {
            if let schedule = function.configuration.schedule, let run = await fire(schedule, of: name, now: now) {
                next = min(next, run)
            }
            let slots = max(1, Int(Double(function.configuration.concurrency) * share))
            let free = state.withLock { slots - $0.running[name, default: 0] }
            guard free > 0 else { continue }
            do {
                // A read first: most passes find nothing due, and a claim is a write.
                guard let due = try await storage.nextDue(function: name) else { continue }
                guard due <= now else {
                    next = min(next, due)
                    continue
                }
                let events = try await storage.claim(function: name, limit: free, now: now)
                for event in events where event.resumed {
                    logger.warning(
                        "RequestId: \(event.requestID) Event invocation of \(name) was being delivered by a host that stopped; delivered again (possible duplicate)"
                    )
                }
                // Shutdown may begin between the claim and the start: what did not start waits
                // again as it was, without an attempt counted against it at the next start.
                let unstarted = events.filter { !start($0) }
                if !unstarted.isEmpty { try await storage.release(unstarted) }
                if events.count < free, let due = try await storage.nextDue(function: name) {
                    next = min(next, max(due, now))
                }
            } catch {
                logger.error("queue: cannot read the events of \(name) from \(storage.location): \(error)")
            }
        }
        await sweepRemovedFunctions(deployment, now: now)
        return next
    }

    /// Starts delivering a claimed event, unless shutdown has begun; returns whether it started.
    private func start(_ event: QueuedEvent) -> Bool {
        let started = state.withLock { state in
            guard !state.stopping else { return false }
            state.running[event.function, default: 0] += 1
            state.deliveries += 1
            return true
        }
        guard started else { return false }
        Task {
            await deliver(event)
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.running[event.function, default: 1] -= 1
                state.deliveries -= 1
                guard state.deliveries == 0, state.stopping else { return [] }
                defer { state.drained = [] }
                return state.drained
            }
            waiters.forEach { $0.resume() }
            wakeup.signal()
        }
        return true
    }

    /// One attempt at `event`, and what follows from its outcome, committed together.
    func deliver(_ event: QueuedEvent) async {
        let now = clock.now()
        guard let function = dispatcher.deployment.functions[event.function] else {
            await hold(event, reason: "function \(event.function) is not deployed")
            return
        }
        let configuration = function.configuration
        if Double(now - event.acceptedAt) > configuration.maxEventAge * 1000 {
            await fail(event, condition: "EventAgeExceeded", attempts: event.attempts, response: nil)
            return
        }
        if event.attempts > configuration.retries {
            await fail(event, condition: "RetriesExhausted", attempts: event.attempts, response: nil)
            return
        }
        var invocation = Invocation(
            function: event.function,
            payload: event.payload,
            requestID: event.requestID,
            kind: .event,
            clientContext: event.clientContext
        )
        invocation.traceHeaders = event.traceHeaders
        let result: InvocationResult
        do {
            result = try await dispatcher.invoke(invocation)
        } catch {
            if error.code == .tooManyRequests || error.code == .service || error.code == .functionNotFound {
                await hold(event, reason: error.message)
            } else {
                let response = Response(
                    statusCode: error.code.status,
                    functionError: nil,
                    payload: Data(error.body.utf8)
                )
                await fail(event, condition: "RetriesExhausted", attempts: event.attempts, response: response)
            }
            return
        }
        let attempts = event.attempts + 1
        if !result.isFunctionError {
            let onSuccess = configuration.onSuccess.map { target in
                let response = Response(statusCode: 200, functionError: nil, payload: result.payload)
                let record = Self.record(event, condition: "Success", attempts: attempts, response: response, at: now)
                return NewQueuedEvent.record(record, to: target, at: now)
            }
            await commit(event, "delivering", .delivered(onSuccess: onSuccess))
            return
        }
        let response = Response(statusCode: 200, functionError: "Unhandled", payload: result.payload)
        guard attempts <= configuration.retries else {
            await fail(event, condition: "RetriesExhausted", attempts: attempts, response: response, counted: true)
            return
        }
        let delay = Int64(configuration.retryDelay * 1000) << (attempts - 1)
        logger.warning(
            "RequestId: \(event.requestID) Event invocation of \(event.function) failed (attempt \(attempts) of \(configuration.retries + 1), \(ReportedError(result.payload)?.type ?? "error")); retrying in \(RuntimeConfiguration.format(Double(delay) / 1000)) s"
        )
        dispatcher.events.publish(.queue(function: event.function, .retried))
        await commit(event, "retrying", .retry(due: now + delay))
    }

    /// Puts a throttled event (or one whose function is gone) back, 1 s to 5 min later, doubling;
    /// it does not count as an attempt.
    private func hold(_ event: QueuedEvent, reason: String) async {
        let delay = min(Int64(1000) << min(event.throttles, 20), 300_000)
        let due = clock.now() + delay
        logger.debug("RequestId: \(event.requestID) Event invocation of \(event.function) waits \(delay) ms: \(reason)")
        await commit(event, "holding", .hold(due: due, counted: true))
    }

    /// Ends `event` as a dead letter, sent on to the function's `onFailure` if it has one.
    private func fail(
        _ event: QueuedEvent,
        condition: String,
        attempts: Int,
        response: Response?,
        counted: Bool = false
    ) async {
        let now = clock.now()
        let record = Self.record(event, condition: condition, attempts: attempts, response: response, at: now)
        let errorType = response.flatMap { ReportedError($0.payload)?.type }
        let target = dispatcher.deployment.functions[event.function]?.configuration.onFailure
        logger.error(
            "RequestId: \(event.requestID) Event invocation of \(event.function) is a dead letter (\(condition) after \(attempts) attempts\(errorType.map { ", \($0)" } ?? ""))\(target.map { "; sent to \($0)" } ?? ""); see galley dlq list \(event.function)"
        )
        dispatcher.events.publish(.queue(function: event.function, .deadLettered))
        let letter = DeadLetterRecord(
            failedAt: now,
            condition: condition,
            attempts: attempts,
            errorType: errorType,
            record: record
        )
        let onFailure = target.map { NewQueuedEvent.record(record, to: $0, at: now) }
        await commit(event, "dead-lettering", .deadLetter(letter, onFailure: onFailure, countsAttempt: counted))
    }

    private func commit(_ event: QueuedEvent, _ what: String, _ outcome: DeliveryOutcome) async {
        do {
            try await storage.finish(event, outcome)
        } catch {
            // The event stays claimed and is delivered again after a restart (or, on PostgreSQL,
            // when its lease runs out).
            logger.error(
                "RequestId: \(event.requestID) queue: writing \(storage.location) failed while \(what): \(error)"
            )
        }
    }

    /// Events of functions no longer deployed wait for a reload to bring them back, up to the
    /// default maximum event age; then they are dead letters. Looked at once a minute.
    private func sweepRemovedFunctions(_ deployment: Deployment, now: Int64) async {
        let due = state.withLock { state in
            guard now - state.lastSweep >= 60_000 else { return false }
            state.lastSweep = now
            return true
        }
        guard due, let names = try? await storage.functionsWaiting() else { return }
        let maxAge = Int64(FunctionConfiguration(handler: "").maxEventAge * 1000)
        for name in names where deployment.functions[name] == nil {
            guard let events = try? await storage.claim(function: name, limit: 1000, now: now) else { continue }
            for event in events {
                if now - event.acceptedAt > maxAge {
                    await fail(event, condition: "EventAgeExceeded", attempts: event.attempts, response: nil)
                } else {
                    await commit(event, "holding", .hold(due: now + 60_000, counted: false))
                }
            }
        }
    }

    // MARK: - Schedules

    /// Queues one run of `function` when its schedule is due (once, however many runs were missed)
    /// and returns the next run.
    private func fire(_ schedule: Schedule, of function: String, now: Int64) async -> Int64? {
        let run = ScheduledRun(
            function: function,
            expression: schedule.expression,
            now: now,
            next: { anchor in schedule.next(after: now, anchor: anchor) },
            event: { time in
                NewQueuedEvent(
                    function: function,
                    requestID: Invocation.makeRequestID(),
                    payload: Self.scheduledEvent(function: function, at: time),
                    acceptedAt: now
                )
            }
        )
        do {
            switch try await storage.fire(run) {
            case .waiting(let next):
                return next
            case .fired(let recorded):
                logger.info(
                    "queue: schedule \(schedule) of \(function) fired for \(Timestamp.iso8601(epochMilliseconds: recorded))"
                )
                return now
            case .finished:
                return nil
            }
        } catch {
            logger.error("queue: the schedule of \(function) could not be run: \(error)")
            return nil
        }
    }

    /// EventBridge's scheduled-event payload.
    static func scheduledEvent(function: String, at time: Int64) -> Data {
        let iso = Timestamp.iso8601(epochMilliseconds: time)
        let seconds = String(iso.prefix(19)) + "Z"
        return Data(
            """
            {"version":"0","id":"\(Invocation.makeRequestID())","detail-type":"Scheduled Event","source":"aws.events",\
            "account":"\(ARN.account)","time":"\(seconds)","region":"\(ARN.region)",\
            "resources":["arn:aws:events:\(ARN.region):\(ARN.account):rule/galley-\(function)"],"detail":{}}
            """.utf8
        )
    }

    // MARK: - Records

    struct Response: Sendable {
        var statusCode: Int
        var functionError: String?
        var payload: Data
    }

    /// Lambda's destination record: `requestContext`, `requestPayload`, `responseContext`,
    /// `responsePayload`.
    static func record(
        _ event: QueuedEvent,
        condition: String,
        attempts: Int,
        response: Response?,
        at time: Int64
    )
        -> Data
    {
        var json = #"{"version":"1.0","timestamp":"\#(Timestamp.iso8601(epochMilliseconds: time))","#
        json += #""requestContext":{"requestId":\#(JSONString.quote(event.requestID)),"#
        json += #""functionArn":\#(JSONString.quote(ARN.function(event.function, qualifier: "$LATEST"))),"#
        json += #""condition":"\#(condition)","approximateInvokeCount":\#(attempts)},"#
        json += #""requestPayload":\#(Self.json(event.payload, empty: "{}"))"#
        if let response {
            json += #","responseContext":{"statusCode":\#(response.statusCode),"executedVersion":"$LATEST""#
            if let functionError = response.functionError { json += #","functionError":"\#(functionError)""# }
            json += #"},"responsePayload":\#(Self.json(response.payload, empty: "null"))"#
        }
        return Data((json + "}").utf8)
    }

    /// `bytes` when they are JSON, else as a JSON string.
    private static func json(_ bytes: Data, empty: String) -> String {
        if bytes.isEmpty { return empty }
        if (try? JSONSyntax.validate(bytes)) != nil { return String(decoding: bytes, as: UTF8.self) }
        return JSONString.quote(String(decoding: bytes, as: UTF8.self))
    }

    // MARK: - Status

    /// `/_galley/queue` and `galley queue --json`.
    /// Per function: waiting and running events and the oldest one's age (empty when unreadable).
    func functionStatuses() async -> [QueueFunctionStatus] {
        (try? await storage.status(now: clock.now())) ?? []
    }

    public func statusJSON() async -> String {
        await Self.statusJSON(
            storage: storage,
            configuration: dispatcher.deployment.configuration.queue,
            now: clock.now()
        )
    }

    /// The status document; a queue file that does not exist yet (`nil`) is an empty queue.
    static func statusJSON(
        storage: (any QueueStorage)?,
        configuration: RuntimeConfiguration.Queue,
        now: Int64
    ) async -> String {
        do {
            let (events, bytes) = try await storage?.totals() ?? (0, 0)
            let functions = try await (storage?.status(now: now) ?? []).map { status in
                let age = status.oldestAge.map { String(Double($0) / 1000) } ?? "null"
                return
                    #"\#(JSONString.quote(status.function)):{"waiting":\#(status.depth),"running":\#(status.running),"#
                    + #""oldestAgeSeconds":\#(age),"delivered":\#(status.delivered),"attempts":\#(status.attempts),"#
                    + #""retries":\#(status.retries),"throttles":\#(status.throttles),"deadLetters":\#(status.deadLetters)}"#
            }
            return #"{"events":\#(events),"bytes":\#(bytes),"maxEvents":\#(configuration.maxEvents),"#
                + #""maxBytes":\#(configuration.maxBytes),"functions":{\#(functions.joined(separator: ","))}}"#
        } catch {
            return #"{"error":\#(JSONString.quote("\(error)"))}"#
        }
    }
}

/// Wakes the delivery loop: a signal before the wait is kept, so none is lost.
final class Wakeup: Sendable {
    private let state = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.signalled {
                    state.signalled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}
