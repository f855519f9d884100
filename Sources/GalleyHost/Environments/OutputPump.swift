import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads (and owns) a worker's merged stdout and stderr line by line into the log of the invocation it is
/// serving (its `sink`), or straight to the host's log between invocations (init-phase lines).
///
/// A thread waits for output; ``drain()`` reads whatever is already in the pipe, so that lines a
/// runtime wrote before posting its response land before the invocation's `END`.
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
    private let writer: LogWriter
    private let state = Mutex(State())

    init(descriptor: Int32, writer: LogWriter) {
        self.descriptor = descriptor
        self.writer = writer
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
    }

    /// The invocation log lines go to; `nil` writes them to the host's log at once.
    var sink: InvocationLog? {
        get { state.withLock { $0.sink } }
        set { state.withLock { $0.sink = newValue } }
    }

    func start() {
        let descriptor = self.descriptor
        BlockingThread { [self] in
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while !state.withLock({ $0.closed }) {
                let ready = poll(&poller, 1, 1000)
                if ready < 0 && errno != EINTR { return }
                if ready > 0 && !drain() { return }
            }
        }
        .start()
    }

    /// Reads what the pipe holds now; returns `false` at end of file.
    @discardableResult
    func drain() -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            while true {
                let count = state.buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    let bytes = state.buffer[..<count]
                    split(bytes, into: &state)
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                if count == 0 {
                    // End of file: the worker and everything it started are gone.
                    if !state.partial.isEmpty { emit(state.partial, to: state.sink) }
                    state.partial = []
                    state.closed = true
                    close(descriptor)
                    return false
                }
                return true  // EAGAIN: nothing more for now
            }
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
            state.closed = true
            close(descriptor)
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
            writer.write(text)
        }
    }
}
