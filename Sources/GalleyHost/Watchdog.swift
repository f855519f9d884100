#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// One thread that fires every invocation's deadline, instead of a timer task per invocation.
///
/// Deadlines are kept in a min-heap and fired in batches, rounded up to the next 10 ms, so the
/// thread wakes at most about 100 times a second however busy the host is. A cancelled ticket
/// stays in the heap until its time and is then dropped.
final class Watchdog: @unchecked Sendable {
    /// A scheduled deadline; ``cancel()`` it when the work finishes first.
    final class Ticket: Sendable {
        fileprivate let action: Mutex<(@Sendable () -> Void)?>
        init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }
        func cancel() { action.withLock { $0 = nil } }
        fileprivate func fire() { action.withLock { action in defer { action = nil }; return action }?() }
    }

    static let shared = Watchdog()
    static let granularity: Duration = .milliseconds(10)

    private var heap: [(deadline: ContinuousClock.Instant, ticket: Ticket)] = []
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var thread = pthread_t()

    private init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { pointer in
            Unmanaged<Watchdog>.fromOpaque(pointer!).takeUnretainedValue().loop()
            return nil
        }, box)
    }

    /// Runs `action` at `deadline` (within 10 ms after it) unless the ticket is cancelled first.
    func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> Ticket {
        let ticket = Ticket(action)
        pthread_mutex_lock(&mutex)
        heap.append((deadline, ticket))
        siftUp(heap.count - 1)
        let isEarliest = heap.count == 1 || heap[0].ticket === ticket
        pthread_mutex_unlock(&mutex)
        if isEarliest { pthread_cond_signal(&condition) }
        return ticket
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while true {
            guard let earliest = heap.first?.deadline else {
                pthread_cond_wait(&condition, &mutex)
                continue
            }
            let now = ContinuousClock.now
            if earliest > now {
                var wait = earliest - now
                // Coalesce: wake on the next 10 ms step so that many deadlines fire together.
                let step = Self.granularity.components.attoseconds / 1_000_000_000
                let nanoseconds = wait.components.attoseconds / 1_000_000_000 + wait.components.seconds * 1_000_000_000
                wait = .nanoseconds((nanoseconds / step + 1) * step)
                var spec = timespec()
                clock_gettime(CLOCK_MONOTONIC, &spec)
                let total = Int64(spec.tv_nsec) + wait.components.attoseconds / 1_000_000_000
                spec.tv_sec += Int(wait.components.seconds + total / 1_000_000_000)
                spec.tv_nsec = Int(total % 1_000_000_000)
                pthread_cond_timedwait(&condition, &mutex, &spec)
                continue
            }
            var due: [Ticket] = []
            while let first = heap.first, first.deadline <= now {
                due.append(first.ticket)
                popFirst()
            }
            pthread_mutex_unlock(&mutex)
            due.forEach { $0.fire() }
            pthread_mutex_lock(&mutex)
        }
    }

    private func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popFirst() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
