import HummingbirdCore
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where `galley serve` listens: TCP or a Unix domain socket.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case socket(path: String)

    var bindAddress: BindAddress {
        switch self {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .socket(let path): .unixDomainSocket(path: path)
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .socket(let path): "unix:\(path)"
        }
    }
}

/// The host could not listen where it was told: one line for the operator, naming the address,
/// the reason and what to change, e.g.
/// `cannot listen on 127.0.0.1:9000: address already in use (use --port)`.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// `127.0.0.1:9000` or `unix:/run/galley.sock`.
    public var address: String
    public var reason: String

    public init(address: String, reason: String) {
        self.address = address
        self.reason = reason
    }

    public var description: String { "cannot listen on \(address): \(reason)" }

    /// The operator's reading of a bind failure, or `nil` when `error` is not one.
    init?(_ error: any Error, address: ListenAddress) {
        self.address = address.description
        let isSocket: Bool
        if case .socket = address { isSocket = true } else { isSocket = false }
        let option = isSocket ? "--socket" : "--port"
        if let error = error as? IOError {
            switch error.errnoCode {
            case EADDRINUSE: reason = "address already in use (use \(option))"
            case EACCES, EPERM:
                reason =
                    isSocket
                    ? "permission denied (use \(option) in a folder you can write)"
                    : "permission denied (ports below 1024 need privileges; use --port)"
            case ENOENT, ENOTDIR: reason = "no such folder for the socket (create it, or use --socket)"
            case EADDRNOTAVAIL: reason = "the address is not one of this machine's (use --host)"
            default: reason = "\(String(cString: strerror(error.errnoCode))) (errno \(error.errnoCode))"
            }
        } else if error is SocketAddressError.UnknownHost {
            reason = "the host name does not resolve (use --host)"
        } else if let error = error as? SocketAddressError {
            switch error {
            case .unixDomainSocketPathTooLong: reason = "the socket path is too long (at most 107 bytes; use --socket)"
            case .failedToParseIPString: reason = "not an IP address (use --host)"
            default: reason = "the host name does not resolve (use --host)"
            }
        } else {
            return nil
        }
    }
}

extension ListenAddress {
    /// Before binding a Unix domain socket: refuses a path that is not a socket, or one another
    /// process is listening on, and removes only a stale socket file (its listener is gone).
    /// Hummingbird would otherwise unlink a live socket and take its clients silently.
    func checkSocketPath() throws(ListenError) {
        guard case .socket(let path) = self else { return }
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // nothing there: bind creates it
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw ListenError(
                address: description,
                reason: "the path exists and is not a socket (refusing to replace it)"
            )
        }
        let probe = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return }
        defer { close(probe) }
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { return }
        let connected = address.withSockAddr { pointer, size in connect(probe, pointer, socklen_t(size)) } == 0
        if connected {
            throw ListenError(
                address: description,
                reason: "another process is listening there (stop it, or use another --socket)"
            )
        }
        if errno == ECONNREFUSED { unlink(path) }  // stale: nobody listens
    }
}
