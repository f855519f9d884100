public import Hummingbird
public import NIOCore

/// The request context of `galley serve`: Hummingbird's, plus the peer's address for
/// `requestContext.http.sourceIp` and `X-Forwarded-For` trust.
public struct HostRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected peer (nginx, when it is in front).
    public let remoteAddress: SocketAddress?
    /// The peer's IP address as text, when the connection has worked it out already.
    private let knownPeerAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        knownPeerAddress = nil
    }

    /// A context for a connection that knows its peer and the peer's address as text.
    init(source: ApplicationRequestContextSource, remoteAddress: SocketAddress?, peerAddress: String?) {
        coreContext = .init(source: source)
        self.remoteAddress = remoteAddress
        knownPeerAddress = peerAddress
    }

    /// The peer's IP address as text (IPv4-mapped IPv6 addresses as IPv4); `nil` for a Unix socket.
    var peerAddress: String? {
        knownPeerAddress ?? remoteAddress?.ipAddress.map(HostResponder.normalize)
    }
}
