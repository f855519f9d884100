import Synchronization

/// A value that is settled once; whoever settles it first wins and the waiter hears exactly once.
final class Once<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiter: (@Sendable (Value) -> Void)?
    }

    private let state = Mutex(State())

    /// Sets the value unless it is set already; returns whether this call set it.
    @discardableResult
    func resolve(_ value: Value) -> Bool {
        let waiter: (@Sendable (Value) -> Void)?? = state.withLock { state in
            guard state.value == nil else { return .none }
            state.value = value
            defer { state.waiter = nil }
            return .some(state.waiter)
        }
        guard case .some(let waiter) = waiter else { return false }
        waiter?(value)
        return true
    }

    /// The value, once it is set.
    var value: Value? { state.withLock { $0.value } }

    /// Calls `waiter` once with the value, now if it is already set.
    func onResolve(_ waiter: @escaping @Sendable (Value) -> Void) {
        let value: Value? = state.withLock { state in
            if let value = state.value { return value }
            state.waiter = waiter
            return nil
        }
        if let value { waiter(value) }
    }
}
