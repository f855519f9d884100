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
/// whole bucket at once. Work that ends first withdraws its entry (a swap with its bucket's last),
/// so the watchdog holds only what is still running, whatever the timeouts: a function with a
/// 15-minute timeout invoked 25,000 times a second would otherwise keep 22 million entries.
final class Watchdog: @unchecked Sendable {
    /// What a deadline fires. Its place is the watchdog's, read and written under its lock.
    class Entry: @unchecked Sendable {
        fileprivate var bucket: Int64 = -1
        fileprivate var index = 0

        /// The deadline has come.
        func expire() {}
    }

    /// A scheduled action; ``cancel()`` it when the work finishes first.
    final class Ticket: Entry, @unchecked Sendable {
        private let action: Mutex<(@Sendable () -> Void)?>
        init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }

        func cancel() {
            action.withLock { $0 = nil }
            Watchdog.shared.withdraw(self)
        }

        override func expire() {
            action.withLock { action in
                defer { action = nil }; return action
            }?()
        }
    }

    static let shared = Watchdog()
    static let granularity: Duration = .milliseconds(10)

    /// Entries by bucket: the deadline in 10 ms steps since `origin`, rounded up.
    private var buckets: [Int64: [Entry]] = [:]
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

    /// Calls `entry.expire()` at `deadline` (within 10 ms after it), unless it is withdrawn first.
    /// An entry is scheduled once.
    func schedule(at deadline: ContinuousClock.Instant, _ entry: Entry) {
        let bucket = self.bucket(of: deadline)
        pthread_mutex_lock(&mutex)
        var isEarliest = false
        entry.bucket = bucket
        if let count = buckets[bucket]?.count {
            entry.index = count
            buckets[bucket]!.append(entry)
        } else {
            entry.index = 0
            buckets[bucket] = [entry]
            heap.append(bucket)
            siftUp(heap.count - 1)
            isEarliest = heap[0] == bucket
        }
        pthread_mutex_unlock(&mutex)
        if isEarliest { pthread_cond_signal(&condition) }
    }

    /// Takes `entry` out of its bucket: the work it guards has ended. Nothing if it has fired.
    func withdraw(_ entry: Entry) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let bucket = entry.bucket
        guard bucket >= 0 else { return }
        entry.bucket = -1
        buckets[bucket]!.withUnsafeMutableBufferPointer { entries in
            let last = entries[entries.count - 1]
            entries[entry.index] = last
            last.index = entry.index
        }
        buckets[bucket]!.removeLast()
        // An emptied bucket keeps its key (its number is in the heap) but not its storage.
        if buckets[bucket]!.isEmpty { buckets[bucket] = [] }
    }

    /// Whether `entry` waits in its bucket, at the place it knows: for tests.
    func holds(_ entry: Entry) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard entry.bucket >= 0, let entries = buckets[entry.bucket], entry.index < entries.count else { return false }
        return entries[entry.index] === entry
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
            for entry in entries { entry.bucket = -1 }
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
