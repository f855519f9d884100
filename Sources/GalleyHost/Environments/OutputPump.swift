import CGalleySystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads (and owns) a worker's merged stdout and stderr line by line into the log of the invocation it is
/// serving (its `sink`), or straight to the host's log between invocations (init-phase lines).
///
/// One shared thread (``OutputReader``) waits for every worker's output; ``drain()`` reads whatever
/// is already in the pipe, so that lines a runtime wrote before posting its response land before the
/// invocation's `END`.
final class OutputPump: Sendable {
    private struct State {
        var partial: [UInt8] = []
        /// Bytes of a line past ``lineLimit`` being dropped until its end.
        var dropping = 0
        /// Reused by every read: one buffer per worker, not one per invocation.
        var buffer = [UInt8](repeating: 0, count: 16384)
        var sink: InvocationLog?
        var closed = false
    }

    private let descriptor: Int32
    /// Where lines go between invocations: the host's log at once, and the event stream.
    private let idle: InvocationLog
    private let state = Mutex(State())

    init(descriptor: Int32, writer: LogWriter, function: String? = nil, events: InvocationEvents? = nil) {
        self.descriptor = descriptor
        self.idle = InvocationLog(writer: writer, requestID: nil, capture: false, function: function, events: events)
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
    }

    /// The invocation log lines go to; `nil` writes them to the host's log at once.
    var sink: InvocationLog? {
        get { state.withLock { $0.sink } }
        set { state.withLock { $0.sink = newValue } }
    }

    func start() {
        OutputReader.shared.add(self, descriptor: descriptor)
    }

    /// Stops watching the pipe and closes it; under the state lock, so that the descriptor's number
    /// is free for reuse only once nothing refers to it.
    private func close(_ state: inout State) {
        state.closed = true
        OutputReader.shared.remove(self, descriptor: descriptor)
        Glibc.close(descriptor)
    }

    /// Reads what the pipe holds now; returns `false` at end of file.
    @discardableResult
    ///
    /// - Parameter reads: At most this many reads (16 KB each); the shared reader passes a few, so
    ///   that a worker printing without pause cannot keep the one thread from every other worker's
    ///   output (the pipe stays readable and comes round again).
    func drain(reads: Int = .max) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            var left = reads
            while left > 0 {
                let count = state.buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    let bytes = state.buffer[..<count]
                    split(bytes, into: &state)
                    left -= 1
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                if count == 0 {
                    // End of file: the worker and everything it started are gone.
                    if !state.partial.isEmpty { emit(state.partial, to: state.sink) }
                    state.partial = []
                    close(&state)
                    return false
                }
                return true  // EAGAIN: nothing more for now
            }
            return true  // more may wait: level-triggered epoll reports it again
        }
    }

    /// Reads to the end once the process has exited (its last words before a crash).
    func finish() {
        var spins = 0
        while drain() && spins < 50 {
            // The pipe may still be held by a grandchild; give up after ~50 ms.
            spins += 1
            usleep(1000)
        }
        state.withLock { state in
            guard !state.closed else { return }
            if !state.partial.isEmpty { emit(state.partial, to: state.sink) }
            state.partial = []
            close(&state)
        }
    }

    /// A log line is at most Lambda's 256 KB; the rest of a longer one is dropped with a marker.
    static let lineLimit = 256 * 1024

    private func split(_ bytes: ArraySlice<UInt8>, into state: inout State) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                take(bytes[start...], into: &state)
                return
            }
            take(bytes[start..<end], into: &state)
            if state.dropping > 0 {
                emit(
                    Array(
                        "[galley: the line above was cut at \(Self.lineLimit) bytes; \(state.dropping) more dropped]"
                            .utf8
                    ),
                    to: state.sink
                )
                state.dropping = 0
            } else {
                emit(state.partial, to: state.sink)
            }
            state.partial = []
            start = end + 1
        }
    }

    /// Adds part of a line, cutting it at ``lineLimit``.
    private func take(_ bytes: ArraySlice<UInt8>, into state: inout State) {
        guard state.dropping == 0 else {
            state.dropping += bytes.count
            return
        }
        let room = Self.lineLimit - state.partial.count
        state.partial += bytes.prefix(room)
        if bytes.count > room {
            emit(state.partial, to: state.sink)
            state.partial = []
            state.dropping = bytes.count - room
        }
    }

    /// The starts of the host's own lines around an invocation.
    static let platformPrefixes = ["START RequestId:", "END RequestId:", "REPORT RequestId:"]

    private func emit(_ line: [UInt8], to sink: InvocationLog?) {
        var text = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...], as: UTF8.self)
        // A runtime's multi-line record (awslambdaric writes its newlines as carriage returns) is
        // one indented block; a line that starts like the host's own is indented, never taken for it.
        text = InvocationLogHandler.indentingContinuations(text)
        if Self.platformPrefixes.contains(where: { text.hasPrefix($0) }) { text = "\t" + text }
        if let sink {
            sink.append(text, flush: false)
        } else {
            idle.append(text)
        }
    }
}

/// The one thread that waits for output from every worker (epoll), instead of a thread per worker.
final class OutputReader: Sendable {
    static let shared = OutputReader()

    private let epoll: Int32
    private let pumps = Mutex<[Int32: OutputPump]>([:])

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let epoll = self.epoll
        BlockingThread { [self] in
            var events = [epoll_event](repeating: epoll_event(), count: 64)
            while true {
                let count = epoll_wait(epoll, &events, Int32(events.count), -1)
                if count < 0 {
                    if errno == EINTR { continue }
                    return
                }
                for event in events[..<Int(count)] {
                    let descriptor = event.data.fd
                    guard let pump = pumps.withLock({ $0[descriptor] }) else { continue }
                    pump.drain(reads: 4)  // at end of file the pump removes itself
                }
            }
        }
        .start()
    }

    func add(_ pump: OutputPump, descriptor: Int32) {
        pumps.withLock { $0[descriptor] = pump }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLHUP.rawValue
        event.data.fd = descriptor
        epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event)
    }

    /// Before the descriptor is closed: a stale event for it finds no pump.
    func remove(_ pump: OutputPump, descriptor: Int32) {
        pumps.withLock { pumps in
            guard pumps[descriptor] === pump else { return }
            pumps[descriptor] = nil
        }
        epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, nil)
    }
}
