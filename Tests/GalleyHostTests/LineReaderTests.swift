import GalleyHost
import Testing

/// `galley invoke --lines` reads stdin through `LineReader`.
struct LineReaderTests {
    /// A reader over `input`, handing out at most `chunk` bytes a read.
    func reader(_ input: [UInt8], chunk: Int) -> LineReader {
        nonisolated(unsafe) var offset = 0
        return LineReader { buffer in
            let count = min(chunk, buffer.count, input.count - offset)
            buffer.copyBytes(from: input[offset..<offset + count])
            offset += count
            return count
        }
    }

    @Test(arguments: [1, 3, 7, 65536])
    func linesAreSplitWhateverTheReadSizes(chunk: Int) {
        let input = Array("one\r\ntwo\n\n{\"three\":3}\nlast without newline".utf8)
        let lines = Array(reader(input, chunk: chunk)).map { String(decoding: $0, as: UTF8.self) }
        #expect(lines == ["one", "two", "", #"{"three":3}"#, "last without newline"])
    }

    @Test func aLongLineIsScannedOnce() {
        // 40 MB in one line, delivered 64 KB a read: each byte is looked at once, not once per read.
        let size = 40 << 20
        var input = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        input += Array("\nshort\n".utf8)
        var lines = reader(input, chunk: 65536)
        #expect(lines.next()?.count == size)
        #expect(lines.next() == Array("short".utf8))
        #expect(lines.next() == nil)
        #expect(lines.bytesScanned <= input.count + 1, "scanned \(lines.bytesScanned) bytes of \(input.count)")
    }
}
