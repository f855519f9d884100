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

    private struct Function: Sendable {
        var invocations = Ring<InvocationEvent.Summary>(limit: RecentInvocations.invocationLimit)
        var lines = Ring<InvocationEvent.Line>(limit: RecentInvocations.lineLimit)
    }

    private let functions = Mutex<[String: Function]>([:])

    public init() {}

    /// Keeps what `event` adds: call it as an observer of ``InvocationEvents``.
    public func record(_ event: InvocationEvent) {
        switch event {
        case .line(let line):
            functions.withLock { $0[line.function, default: Function()].lines.append(line) }
        case .end(let summary):
            functions.withLock { $0[summary.function, default: Function()].invocations.append(summary) }
        default:
            break
        }
    }

    /// `function`'s kept lines at or after `since` (Unix epoch milliseconds), oldest first.
    public func lines(of function: String, since: Int64 = 0) -> [InvocationEvent.Line] {
        functions.withLock { $0[function]?.lines.ordered ?? [] }.filter { $0.time >= since }
    }

    /// `function`'s kept invocations, oldest first.
    public func invocations(of function: String) -> [InvocationEvent.Summary] {
        functions.withLock { $0[function]?.invocations.ordered ?? [] }
    }
}
