import Synchronization

/// The last invocations and log lines of each function, in memory and bounded: what
/// `galley logs` shows of the past and the console lists.
public final class RecentInvocations: Sendable {
    /// Per function: at most this many invocations and lines are kept; older ones are dropped.
    public static let invocationLimit = 100
    public static let lineLimit = 1000

    private struct Ring<Element: Sendable>: Sendable {
        var items: [Element] = []
        var start = 0
        let limit: Int

        mutating func append(_ item: Element) {
            if items.count < limit {
                items.append(item)
            } else {
                items[start] = item
                start = (start + 1) % limit
            }
        }

        var ordered: [Element] { Array(items[start...] + items[..<start]) }
    }

    /// One function's rings, under a lock of their own.
    private final class Function: Sendable {
        let invocations = Mutex(Ring<InvocationEvent.Summary>(limit: RecentInvocations.invocationLimit))
        let lines = Mutex(Ring<InvocationEvent.Line>(limit: RecentInvocations.lineLimit))
    }

    private let functions = Mutex<[String: Function]>([:])

    private func function(_ name: String) -> Function {
        functions.withLock { table in
            if let known = table[name] { return known }
            let made = Function()
            table[name] = made
            return made
        }
    }

    public init() {}

    /// Keeps what `event` adds: call it as an observer of ``InvocationEvents``.
    public func record(_ event: InvocationEvent) {
        switch event {
        case .line(let line):
            function(line.function).lines.withLock { $0.append(line) }
        case .lines(let lines):
            guard let first = lines.first else { return }
            function(first.function).lines.withLock { ring in
                for line in lines { ring.append(line) }
            }
        case .end(let summary):
            function(summary.function).invocations.withLock { $0.append(summary) }
        default:
            break
        }
    }

    /// `function`'s kept lines at or after `since` (Unix epoch milliseconds), oldest first.
    public func lines(of function: String, since: Int64 = 0) -> [InvocationEvent.Line] {
        (functions.withLock { $0[function] }?.lines.withLock { $0.ordered } ?? []).filter { $0.time >= since }
    }

    /// `function`'s kept invocations, oldest first.
    public func invocations(of function: String) -> [InvocationEvent.Summary] {
        functions.withLock { $0[function] }?.invocations.withLock { $0.ordered } ?? []
    }
}
