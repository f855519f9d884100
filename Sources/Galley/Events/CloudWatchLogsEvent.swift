import CZlib

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Log events from a CloudWatch Logs subscription filter: gzip-compressed, then base64-encoded,
/// in `awslogs.data`. ``decode()`` gives the log events.
///
/// ```swift
/// for line in try event.decode().logEvents { context.logger.info("\(line.message)") }
/// ```
public struct CloudWatchLogsEvent: Codable, Sendable, Equatable {
    public struct AWSLogs: Codable, Sendable, Equatable {
        /// Base64 of gzip of the JSON of ``CloudWatchLogsEvent/Payload``.
        public var data: String
    }

    /// What `awslogs.data` holds.
    public struct Payload: Codable, Sendable, Equatable {
        /// `DATA_MESSAGE`, or `CONTROL_MESSAGE` for CloudWatch's own reachability checks.
        public var messageType: String
        public var owner: String
        public var logGroup: String
        public var logStream: String
        public var subscriptionFilters: [String]
        public var logEvents: [LogEvent]
    }

    public struct LogEvent: Codable, Sendable, Equatable {
        public var id: String
        /// Milliseconds since 1970.
        public var timestamp: Int64
        public var message: String
    }

    public var awslogs: AWSLogs

    /// Base64-decodes, decompresses and decodes `awslogs.data`.
    public func decode() throws -> Payload {
        guard let compressed = Data(base64Encoded: awslogs.data) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "awslogs.data is not base64")
            )
        }
        let json = try Gzip.decompress(Array(compressed))
        return try JSONDecoder().decode(Payload.self, from: Data(json))
    }
}

/// gzip through zlib, for CloudWatch Logs' `awslogs.data`.
package enum Gzip {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// The bytes of one gzip stream (or a zlib one: zlib detects which).
    package static func decompress(_ input: [UInt8]) throws -> [UInt8] {
        try run(input, windowBits: 15 + 32, compressing: false)
    }

    /// `input` as one gzip stream.
    package static func compress(_ input: [UInt8]) throws -> [UInt8] {
        try run(input, windowBits: 15 + 16, compressing: true)
    }

    private static func run(_ input: [UInt8], windowBits: Int32, compressing: Bool) throws -> [UInt8] {
        var stream = z_stream()
        let status =
            compressing
            ? deflateInit2_(
                &stream,
                Z_DEFAULT_COMPRESSION,
                Z_DEFLATED,
                windowBits,
                8,
                Z_DEFAULT_STRATEGY,
                ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)
            )
            : inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw Failure(description: "zlib could not start (\(status))") }
        defer { _ = compressing ? deflateEnd(&stream) : inflateEnd(&stream) }

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        return try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                let result = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(buffer.count)
                    return compressing ? deflate(&stream, Z_FINISH) : inflate(&stream, Z_NO_FLUSH)
                }
                output.append(contentsOf: chunk[..<(chunk.count - Int(stream.avail_out))])
                switch result {
                case Z_STREAM_END:
                    return output
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_out == 0:
                    continue
                default:
                    let what = compressing ? "compress" : "decompress"
                    throw Failure(description: "could not \(what) gzip data (zlib \(result))")
                }
            }
        }
    }
}
