#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A blocking HTTP/1.1 client for the Lambda Runtime API, over one keep-alive connection.
///
/// A worker serves one invocation at a time and does nothing while it waits for `/next`, so a
/// plain socket is all it needs: no event loop, no threads, a few milliseconds less to start.
/// One exchange at a time: callers must not share a client between threads at once.
public final class RuntimeAPIClient: @unchecked Sendable {
    /// A failed exchange: the connection broke, or the answer was not HTTP.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// One answer.
    public struct Response: Sendable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: [UInt8]
    }

    private let host: String
    private let port: UInt16
    private var socket: Int32 = -1
    private var buffer: [UInt8] = []

    /// - Parameter address: `AWS_LAMBDA_RUNTIME_API`: `host:port`, where host is an IPv4 address or `localhost`.
    public init(address: String) throws(Failure) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw Failure(description: "AWS_LAMBDA_RUNTIME_API must be host:port, found '\(address)'")
        }
        let host = String(address[..<colon])
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
    }

    deinit {
        if socket >= 0 { close(socket) }
    }

    /// `GET /runtime/invocation/next`: blocks until the host has an invocation.
    public func next() throws(Failure) -> Response {
        try exchange("GET", "/2018-06-01/runtime/invocation/next", headers: [], body: [])
    }

    /// Posts `body` to `path` under `/2018-06-01/runtime/`.
    public func post(_ path: String, body: [UInt8], headers: [(String, String)] = []) throws(Failure) -> Response {
        try exchange("POST", "/2018-06-01/runtime/" + path, headers: headers, body: body)
    }

    private func exchange(
        _ method: String,
        _ path: String,
        headers: [(String, String)],
        body: [UInt8]
    ) throws(Failure) -> Response {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: galley-worker\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "Content-Length: \(body.count)\r\n\r\n"
        // A keep-alive connection the host closed meanwhile fails on first use: reconnect once.
        for attempt in 0..<2 {
            do throws(Failure) {
                try connectIfNeeded()
                try send(Array(request.utf8) + body)
                return try receive()
            } catch {
                disconnect()
                if attempt == 1 { throw error }
            }
        }
        throw Failure(description: "unreachable")
    }

    private func connectIfNeeded() throws(Failure) {
        guard socket < 0 else { return }
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(descriptor)
            throw Failure(description: "'\(host)' is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw Failure(description: "cannot connect to the Runtime API at \(host):\(port): \(reason)")
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        socket = descriptor
        buffer = []
    }

    private func disconnect() {
        if socket >= 0 { close(socket) }
        socket = -1
        buffer = []
    }

    private func send(_ bytes: [UInt8]) throws(Failure) {
        guard Self.sendAll(bytes, to: socket) else {
            throw Failure(description: "the Runtime API closed the connection")
        }
    }

    /// Writes every byte to a blocking socket; `false` once the other side is gone.
    static func sendAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    /// Reads more bytes into the buffer.
    private func fill() throws(Failure) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw Failure(description: "the Runtime API closed the connection") }
            buffer += chunk[..<count]
            return
        }
    }

    private func line() throws(Failure) -> String {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[..<end]
                buffer.removeSubrange(...end)
                return String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
            }
            try fill()
        }
    }

    private func bytes(_ count: Int) throws(Failure) -> [UInt8] {
        while buffer.count < count { try fill() }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    private func receive() throws(Failure) -> Response {
        let statusLine = try line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "not an HTTP response: \(statusLine.prefix(80))")
        }
        var headers: [String: String] = [:]
        while true {
            let header = try line()
            if header.isEmpty { break }
            guard let colon = header.firstIndex(of: ":") else { continue }
            let name = header[..<colon].lowercased()
            let value = header[header.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers[name] = String(value)
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try line()
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw Failure(description: "bad chunk size '\(sizeLine)'")
                }
                if size == 0 {
                    while try !line().isEmpty {}
                    break
                }
                body += try bytes(size)
                _ = try line()
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            body = try bytes(length)
        }
        if headers["connection"]?.lowercased() == "close" { disconnect() }
        return Response(status: status, headers: headers, body: body)
    }
}
