import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One execution environment's side of the Lambda Runtime API: which invocation its runtime may
/// fetch, and which it may answer.
///
/// Every environment has its own endpoint (and its own loopback port, see ``RuntimeAPIServer``),
/// so a runtime can neither fetch nor answer another environment's invocation: an id it was not
/// given is `400 InvalidRequestID`, one it already answered is `403 InvalidStateTransition`.
final class RuntimeEndpoint: Sendable {
    /// An invocation as `/next` hands it to the runtime.
    struct Delivery: Sendable {
        var requestID: String
        var payload: Data
        /// Unix epoch milliseconds, for `Lambda-Runtime-Deadline-Ms`.
        var deadlineMs: Int64
        var functionARN: String
        var traceID: String
        var clientContext: String?
    }

    /// What the runtime told the host.
    enum Event: Sendable {
        /// The runtime asked for its first event: the init phase is over.
        case ready
        /// `/init/error`, with its body and `Lambda-Runtime-Function-Error-Type`.
        case initError(Data, type: String?)
        /// `/response` for the invocation in flight.
        case response(Data)
        /// `/error` for the invocation in flight, or a response over the size limit.
        case error(Data, type: String?)
    }

    /// How the endpoint answers a post.
    enum Answer: Sendable, Equatable {
        case accepted
        case invalidRequestID
        case invalidState(String)
    }

    private struct State {
        var initialized = false
        var parked: (connection: ObjectIdentifier, respond: @Sendable (Delivery) -> Void)?
        var pending: Delivery?
        var current: String?
        var answered: [String] = []
    }

    private let state = Mutex(State())
    /// Whether a socket (by inode) belongs to the environment's processes; until the environment
    /// says, nobody is admitted.
    private let ownership = Mutex<(@Sendable (String) -> Bool)?>(nil)
    private let onEvent: @Sendable (Event) -> Void
    /// Answers `POST /2018-06-01/galley/store`: a JSON ``StoreCall`` in, its JSON answer out.
    let onStoreCall: @Sendable ([UInt8]) async -> [UInt8]

    init(
        onEvent: @escaping @Sendable (Event) -> Void,
        onStoreCall: @escaping @Sendable ([UInt8]) async -> [UInt8] = { _ in
            Array(#"{"error":{"code":"unavailable","message":"no key-value store is configured for this host"}}"#.utf8)
        }
    ) {
        self.onEvent = onEvent
        self.onStoreCall = onStoreCall
    }

    /// Admits connections whose peer socket `owns` recognises as the environment's own.
    func admit(_ owns: @escaping @Sendable (String) -> Bool) {
        ownership.withLock { $0 = owns }
    }

    /// Whether the loopback connection from `peerPort` to `localPort` comes from the environment.
    func admits(peerPort: Int?, localPort: Int?) -> Bool {
        guard let owns = ownership.withLock({ $0 }), let peerPort, let localPort,
            let inode = LoopbackPeer.socketInode(peerPort: peerPort, localPort: localPort)
        else { return false }
        return owns(inode)
    }

    /// `GET /next`: `respond` is called with the next invocation, now or when one is delivered.
    /// Returns an error answer instead when an invocation is still unanswered.
    func next(on connection: ObjectIdentifier, _ respond: @escaping @Sendable (Delivery) -> Void) -> Answer {
        let (answer, delivery, first): (Answer, Delivery?, Bool) = state.withLock { state in
            if let current = state.current {
                return (
                    .invalidState(
                        "State transition from Invoking to Ready failed: invocation \(current) is unanswered"
                    ), nil, false
                )
            }
            let first = !state.initialized
            state.initialized = true
            if let pending = state.pending {
                state.pending = nil
                state.current = pending.requestID
                return (.accepted, pending, first)
            }
            state.parked = (connection, respond)
            return (.accepted, nil, first)
        }
        if first { onEvent(.ready) }
        if let delivery { respond(delivery) }
        return answer
    }

    /// Hands `delivery` to the runtime's waiting `/next`, or keeps it for the next one.
    func deliver(_ delivery: Delivery) {
        let parked: (@Sendable (Delivery) -> Void)? = state.withLock { state in
            guard let parked = state.parked else {
                state.pending = delivery
                return nil
            }
            state.parked = nil
            state.current = delivery.requestID
            return parked.respond
        }
        parked?(delivery)
    }

    /// The connection of a waiting `/next` closed: the next delivery waits for the next `/next`.
    func unpark(_ connection: ObjectIdentifier) {
        state.withLock { state in
            if state.parked?.connection == connection { state.parked = nil }
        }
    }

    /// A delivery that could not be written (its connection closed meanwhile) goes to the next `/next`.
    func redeliver(_ delivery: Delivery) {
        let parked: (@Sendable (Delivery) -> Void)? = state.withLock { state in
            guard state.current == delivery.requestID else { return nil }
            guard let parked = state.parked else {
                state.current = nil
                state.pending = delivery
                return nil
            }
            state.parked = nil
            return parked.respond
        }
        parked?(delivery)
    }

    /// `POST /{id}/response` or `/{id}/error`.
    func post(_ requestID: String, _ event: Event) -> Answer {
        let answer: Answer = state.withLock { state in
            if state.current == requestID {
                state.current = nil
                state.answered.append(requestID)
                if state.answered.count > 16 { state.answered.removeFirst() }
                return .accepted
            }
            if state.answered.contains(requestID) {
                return .invalidState(
                    "State transition from Ready to Responded failed: invocation \(requestID) was already answered"
                )
            }
            return .invalidRequestID
        }
        if answer == .accepted { onEvent(event) }
        return answer
    }

    /// `POST /init/error`: accepted only before the first `/next`.
    func initError(_ body: Data, type: String?) -> Answer {
        let accepted = state.withLock { state in
            guard !state.initialized else { return false }
            state.initialized = true
            return true
        }
        guard accepted else {
            return .invalidState("State transition from Ready to InitError failed: the init phase is over")
        }
        onEvent(.initError(body, type: type))
        return .accepted
    }
}
