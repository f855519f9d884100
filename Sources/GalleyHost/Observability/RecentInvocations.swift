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

    /// The last lines of a function in one fixed byte buffer, used as a ring of records: one per
    /// batch of lines written together (`time`, request id, the lines), so that an invocation's
    /// `START`, `END` and `REPORT` cost one record. Keeping lines copies their bytes and allocates
    /// nothing; the oldest records make room for new ones. At most ``lineLimit`` lines (whole
    /// records) or ``byteLimit`` bytes.
    struct LineRing: Sendable {
        static let byteLimit = 256 * 1024
        private var storage: [UInt8] = []
        /// Logical offsets of the oldest record and of the end; physical = logical % capacity.
        private var head = 0
        private var tail = 0
        /// Lines kept, in `records` records.
        private(set) var count = 0
        private var records = 0
        /// Each kept record's size and line count, oldest at `oldest`: dropping the oldest record
        /// reads no bytes.
        private var sizes: [Int32] = []
        private var lineCounts: [Int32] = []
        private var oldest = 0
        let lineLimit: Int

        init(lineLimit: Int) {
            self.lineLimit = lineLimit
        }

        private var capacity: Int { Self.byteLimit }

        /// Keeps `texts`, written together at `time` for `requestID`.
        mutating func append(time: Int64, requestID: String?, texts: [String]) {
            let texts = texts.suffix(lineLimit)
            let size = texts.reduce(0) { $0 + 4 + Swift.min($1.utf8.count, capacity / 4) }
            // A batch too large for one record goes line by line.
            guard size <= capacity / 4 || texts.count == 1 else {
                for text in texts { append(time: time, requestID: requestID, texts: [text]) }
                return
            }
            if storage.isEmpty {
                storage = [UInt8](repeating: 0, count: capacity)
                sizes = [Int32](repeating: 0, count: lineLimit)
                lineCounts = [Int32](repeating: 0, count: lineLimit)
            }
            var id = requestID ?? ""
            id.withUTF8 { id in
                let idBytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(id).prefix(255))
                let recordSize = 8 + 1 + idBytes.count + 2 + size
                while records > 0 && (count + texts.count > lineLimit || tail + recordSize - head > capacity) {
                    dropOldest()
                }
                var header = (time.littleEndian, UInt8(idBytes.count), UInt16(texts.count).littleEndian)
                withUnsafeBytes(of: &header.0) { put($0) }
                withUnsafeBytes(of: &header.1) { put($0) }
                put(idBytes)
                withUnsafeBytes(of: &header.2) { put($0) }
                for var text in texts {
                    text.withUTF8 { text in
                        let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(text).prefix(capacity / 4))
                        var length = UInt32(bytes.count).littleEndian
                        withUnsafeBytes(of: &length) { put($0) }
                        put(bytes)
                    }
                }
                let slot = (oldest + records) % lineLimit
                sizes[slot] = Int32(recordSize)
                lineCounts[slot] = Int32(texts.count)
            }
            records += 1
            count += texts.count
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

        /// A little-endian integer of `width` bytes at `offset`.
        private func integer(at offset: Int, width: Int) -> Int {
            (0..<width).reduce(0) { $0 | Int(byte(at: offset + $1)) << (8 * $1) }
        }

        private mutating func dropOldest() {
            head += Int(sizes[oldest])
            count -= Int(lineCounts[oldest])
            oldest = (oldest + 1) % lineLimit
            records -= 1
        }

        func lines(function: String) -> [InvocationEvent.Line] {
            var lines: [InvocationEvent.Line] = []
            var offset = head
            while offset < tail {
                let time = Int64(truncatingIfNeeded: integer(at: offset, width: 8))
                let idLength = Int(byte(at: offset + 8))
                let id = bytes(at: offset + 9, count: idLength)
                let requestID = id.isEmpty ? nil : String(decoding: id, as: UTF8.self)
                let lineCount = integer(at: offset + 9 + idLength, width: 2)
                offset += 11 + idLength
                for _ in 0..<lineCount {
                    let length = integer(at: offset, width: 4)
                    let text = bytes(at: offset + 4, count: length)
                    lines.append(
                        InvocationEvent.Line(
                            function: function,
                            requestID: requestID,
                            text: String(decoding: text, as: UTF8.self),
                            time: time
                        )
                    )
                    offset += 4 + length
                }
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
                ring.append(time: batch.time, requestID: batch.requestID, texts: batch.texts)
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
