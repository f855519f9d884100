public import Hummingbird
public import NIOCore

/// The request context of `galley serve`: Hummingbird's, plus the peer's address for
/// `requestContext.http.sourceIp` and `X-Forwarded-For` trust.
public struct HostRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected peer (nginx, when it is in front).
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
