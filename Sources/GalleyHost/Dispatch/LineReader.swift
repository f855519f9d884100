#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A stream read one line at a time (without the newline), as it arrives: for
/// `galley invoke --lines`.
///
/// Each byte is looked at once when searching for newlines, so a 40 MB line costs the same as
/// 40 MB of short lines.
public struct LineReader: Sequence, IteratorProtocol {
    /// Fills the buffer; returns the byte count, 0 at the end, or -1 with `errno` set.
    public typealias Read = (UnsafeMutableRawBufferPointer) -> Int

    private let read: Read
    private var pending: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)
    /// Where the current line starts in `pending`.
    private var start = 0
    /// Bytes from `start` up to here hold no newline.
    private var scanned = 0
    private var finished = false
    /// Bytes compared against a newline so far, for the test that reading stays linear.
    public private(set) var bytesScanned = 0

    /// Reads standard input.
    public init() {
        self.init { buffer in Glibc.read(0, buffer.baseAddress, buffer.count) }
    }

    public init(read: @escaping Read) {
        self.read = read
    }

    /// The index of the first newline at or after `from` (memchr: one pass, fast in debug builds too).
    private static func newline(in bytes: [UInt8], from: Int) -> Int? {
        guard from < bytes.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer in
            memchr(buffer.baseAddress! + from, Int32(UInt8(ascii: "\n")), buffer.count - from).map {
                buffer.baseAddress!.distance(to: $0.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    public mutating func next() -> [UInt8]? {
        while true {
            if let newline = Self.newline(in: pending, from: scanned) {
                bytesScanned += newline - scanned + 1
                var line = Array(pending[start..<newline])
                start = newline + 1
                scanned = start
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return line
            }
            bytesScanned += pending.count - scanned
            scanned = pending.count
            if finished {
                guard start < pending.count else { return nil }
                let line = Array(pending[start...])
                start = pending.count
                scanned = start
                return line
            }
            if start > 0 {
                pending.removeFirst(start)
                scanned -= start
                start = 0
            }
            let count = chunk.withUnsafeMutableBytes { read($0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                finished = true
            } else {
                pending.append(contentsOf: chunk[..<count])
            }
        }
    }
}
