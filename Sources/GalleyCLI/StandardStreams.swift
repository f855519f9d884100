import GalleyHost

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Raw stdin/stdout/stderr: stdout carries payloads only, everything else goes to stderr.
enum StandardStreams {
    static func write(_ bytes: some Collection<UInt8>, to descriptor: Int32 = 1) {
        let array = Array(bytes)
        array.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// Writes one line to stdout.
    static func writeLine(_ bytes: some Collection<UInt8>) {
        write(Array(bytes) + [UInt8(ascii: "\n")])
    }

    /// Writes one line to stderr.
    static func writeError(_ line: String) {
        write(Array((line + "\n").utf8), to: 2)
    }

    /// The whole of `file`, or of stdin when it is `nil`; a file that cannot be read is a one-line failure.
    static func contents(of file: String?, describedAs description: String) throws -> Data {
        guard let file else { return readAll() }
        do {
            return try Data(contentsOf: URL(filePath: file))
        } catch {
            throw Failure("cannot read \(description) (\(RuntimeConfiguration.reason(error)))")
        }
    }

    /// All of stdin.
    static func readAll() -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            data.append(contentsOf: buffer[..<count])
        }
        return data
    }
}
