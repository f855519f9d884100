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

    /// The last lines of a function in one fixed byte buffer, used as a ring of records
    /// (`time`, request id, text): keeping a line copies its bytes and allocates nothing, and the
    /// oldest lines make room for new ones. At most ``lineLimit`` lines or ``byteLimit`` bytes.
    struct LineRing: Sendable {
        static let byteLimit = 256 * 1024
        private var storage: [UInt8] = []
        /// Logical offsets of the oldest record and of the end; physical = logical % capacity.
        private var head = 0
        private var tail = 0
        private(set) var count = 0
        /// Each kept record's size, oldest at `oldest`: dropping the oldest record reads no bytes.
        private var sizes: [Int32] = []
        private var oldest = 0
        let lineLimit: Int

        init(lineLimit: Int) {
            self.lineLimit = lineLimit
        }

        private var capacity: Int { Self.byteLimit }

        mutating func append(time: Int64, requestID: String?, text: String) {
            if storage.isEmpty {
                storage = [UInt8](repeating: 0, count: capacity)
                sizes = [Int32](repeating: 0, count: lineLimit)
            }
            var id = requestID ?? ""
            var text = text
            id.withUTF8 { id in
                text.withUTF8 { text in
                    let idBytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(id).prefix(255))
                    let textBytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(text).prefix(capacity / 4))
                    let size = 8 + 1 + idBytes.count + 4 + textBytes.count
                    while count >= lineLimit || (count > 0 && tail + size - head > capacity) { dropOldest() }
                    var header = (time.littleEndian, UInt8(idBytes.count))
                    withUnsafeBytes(of: &header.0) { put($0) }
                    withUnsafeBytes(of: &header.1) { put($0) }
                    put(idBytes)
                    var length = UInt32(textBytes.count).littleEndian
                    withUnsafeBytes(of: &length) { put($0) }
                    put(textBytes)
                    sizes[(oldest + count) % lineLimit] = Int32(size)
                }
            }
            count += 1
        }

        /// Copies `bytes` at the end, in at most two pieces around the buffer's end.
        private mutating func put(_ bytes: UnsafeRawBufferPointer) {
            guard !bytes.isEmpty else { return }
            let capacity = self.capacity
            let start = tail % capacity
            let first = min(bytes.count, capacity - start)
            storage.withUnsafeMutableBytes { buffer in
                buffer.baseAddress!.advanced(by: start).copyMemory(from: bytes.baseAddress!, byteCount: first)
                if first < bytes.count {
                    buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + first, byteCount: bytes.count - first)
                }
            }
            tail += bytes.count
        }

        private func byte(at offset: Int) -> UInt8 { storage[offset % capacity] }

        private func bytes(at offset: Int, count: Int) -> [UInt8] {
            (0..<count).map { byte(at: offset + $0) }
        }

        /// The record at `offset`: its fields and where the next one starts.
        private func record(at offset: Int) -> (time: Int64, requestID: String?, text: String, next: Int) {
            var time: Int64 = 0
            let timeBytes = bytes(at: offset, count: 8)
            withUnsafeMutableBytes(of: &time) { $0.copyBytes(from: timeBytes) }
            let idLength = Int(byte(at: offset + 8))
            let id = bytes(at: offset + 9, count: idLength)
            var length: UInt32 = 0
            let lengthBytes = bytes(at: offset + 9 + idLength, count: 4)
            withUnsafeMutableBytes(of: &length) { $0.copyBytes(from: lengthBytes) }
            let textStart = offset + 13 + idLength
            let text = bytes(at: textStart, count: Int(UInt32(littleEndian: length)))
            return (
                Int64(littleEndian: time),
                id.isEmpty ? nil : String(decoding: id, as: UTF8.self),
                String(decoding: text, as: UTF8.self),
                textStart + text.count
            )
        }

        private mutating func dropOldest() {
            head += Int(sizes[oldest])
            oldest = (oldest + 1) % lineLimit
            count -= 1
        }

        func lines(function: String) -> [InvocationEvent.Line] {
            var lines: [InvocationEvent.Line] = []
            var offset = head
            while offset < tail {
                let record = record(at: offset)
                lines.append(
                    InvocationEvent.Line(
                        function: function,
                        requestID: record.requestID,
                        text: record.text,
                        time: record.time
                    )
                )
                offset = record.next
            }
            return lines
        }
    }

    /// One function's rings, under a lock of their own.
    private final class Function: Sendable {
        let invocations = Mutex(Ring<InvocationEvent.Summary>(limit: RecentInvocations.invocationLimit))
        let lines = Mutex(LineRing(lineLimit: RecentInvocations.lineLimit))
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
        case .line:
            // Lines one by one are for live feeds; the ring keeps them as the log writes them.
            break
        case .lines(let batch):
            function(batch.function).lines.withLock { ring in
                for text in batch.texts { ring.append(time: batch.time, requestID: batch.requestID, text: text) }
            }
        case .end(let summary):
            function(summary.function).invocations.withLock { $0.append(summary) }
        default:
            break
        }
    }

    /// `function`'s kept lines at or after `since` (Unix epoch milliseconds), oldest first.
    public func lines(of function: String, since: Int64 = 0) -> [InvocationEvent.Line] {
        (functions.withLock { $0[function] }?.lines.withLock { $0.lines(function: function) } ?? [])
            .filter { $0.time >= since }
    }

    /// `function`'s kept invocations, oldest first.
    public func invocations(of function: String) -> [InvocationEvent.Summary] {
        functions.withLock { $0[function] }?.invocations.withLock { $0.ordered } ?? []
    }
}
