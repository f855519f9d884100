import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One thread that fires every invocation's deadline, instead of a timer task per invocation.
///
/// Deadlines go into 10 ms buckets (a timer wheel): scheduling appends to a bucket, and the thread
/// wakes at most once per bucket, about 100 times a second however busy the host is, to fire a
/// whole bucket at once. A cancelled ticket stays in its bucket until then and is dropped.
final class Watchdog: @unchecked Sendable {
    /// What a deadline fires: it does nothing once whatever it guards has ended.
    protocol Entry: AnyObject, Sendable {
        func expire()
    }

    /// A scheduled action; ``cancel()`` it when the work finishes first.
    final class Ticket: Entry {
        private let action: Mutex<(@Sendable () -> Void)?>
        init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }
        func cancel() { action.withLock { $0 = nil } }
        func expire() {
            action.withLock { action in
                defer { action = nil }; return action
            }?()
        }
    }

    static let shared = Watchdog()
    static let granularity: Duration = .milliseconds(10)

    /// Entries by bucket: the deadline in 10 ms steps since `origin`, rounded up.
    private var buckets: [Int64: [any Entry]] = [:]
    /// The buckets' numbers, as a min-heap.
    private var heap: [Int64] = []
    private let origin = ContinuousClock.now
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
        pthread_create(
            &thread,
            nil,
            { pointer in
                Unmanaged<Watchdog>.fromOpaque(pointer!).takeUnretainedValue().loop()
                return nil
            },
            box
        )
    }

    /// Runs `action` at `deadline` (within 10 ms after it) unless the ticket is cancelled first.
    func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> Ticket {
        let ticket = Ticket(action)
        schedule(at: deadline, ticket)
        return ticket
    }

    /// Calls `entry.expire()` at `deadline` (within 10 ms after it). The entry is held until then.
    func schedule(at deadline: ContinuousClock.Instant, _ entry: any Entry) {
        let bucket = self.bucket(of: deadline)
        pthread_mutex_lock(&mutex)
        var isEarliest = false
        if buckets[bucket]?.append(entry) == nil {
            buckets[bucket] = [entry]
            heap.append(bucket)
            siftUp(heap.count - 1)
            isEarliest = heap[0] == bucket
        }
        pthread_mutex_unlock(&mutex)
        if isEarliest { pthread_cond_signal(&condition) }
    }

    private static let step = granularity.components.attoseconds / 1_000_000_000  // in nanoseconds

    /// The bucket that fires at or just after `deadline`.
    private func bucket(of instant: ContinuousClock.Instant) -> Int64 {
        let offset = instant - origin
        let nanoseconds = offset.components.seconds * 1_000_000_000 + offset.components.attoseconds / 1_000_000_000
        return nanoseconds <= 0 ? 0 : (nanoseconds + Self.step - 1) / Self.step
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while true {
            guard let first = heap.first else {
                pthread_cond_wait(&condition, &mutex)
                continue
            }
            let due = origin + .nanoseconds(first * Self.step)
            let now = ContinuousClock.now
            if due > now {
                let wait = due - now
                var spec = timespec()
                clock_gettime(CLOCK_MONOTONIC, &spec)
                let total = Int64(spec.tv_nsec) + wait.components.attoseconds / 1_000_000_000
                spec.tv_sec += Int(wait.components.seconds + total / 1_000_000_000)
                spec.tv_nsec = Int(total % 1_000_000_000)
                pthread_cond_timedwait(&condition, &mutex, &spec)
                continue
            }
            popFirst()
            let entries = buckets.removeValue(forKey: first) ?? []
            pthread_mutex_unlock(&mutex)
            entries.forEach { $0.expire() }
            pthread_mutex_lock(&mutex)
        }
    }

    private func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { return }
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
            if left < heap.count, heap[left] < heap[smallest] { smallest = left }
            if right < heap.count, heap[right] < heap[smallest] { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
