import Synchronization

/// The deployment new invocations use; a reload swaps it whole, so a request resolves its route
/// and its function against the same one.
public final class DeploymentRegistry: Sendable {
    private let current: Mutex<Deployment>

    public init(_ deployment: Deployment) {
        current = Mutex(deployment)
    }

    /// The deployment in force now.
    public var deployment: Deployment { current.withLock { $0 } }

    /// Puts `deployment` in force and returns the one it replaced.
    @discardableResult
    public func replace(with deployment: Deployment) -> Deployment {
        current.withLock { current in
            defer { current = deployment }
            return current
        }
    }
}
