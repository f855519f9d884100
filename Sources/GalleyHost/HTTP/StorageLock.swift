#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One `galley serve` per storage folder: an exclusive `flock` on `serve.lock` inside it, held for
/// the host's life and released by the kernel however the process ends.
///
/// A second host on the same folder would take the first one's running events for crashed ones
/// and run them again. The CLI's `kv`, `queue` and `dlq` commands do not take the lock.
final class StorageLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock of `folder` (created if missing).
    ///
    /// - Throws: a one-line description naming the folder, and the process holding it when known.
    init(folder: String) throws(StorageLockError) {
        // Like `mkdir -p`: the queue and the store expect the folder to exist.
        var prefix = folder.hasPrefix("/") ? "" : "."
        for part in folder.split(separator: "/") {
            prefix += "/" + part
            _ = mkdir(prefix, 0o755)
        }
        let path = folder + "/serve.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StorageLockError(message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? ProcFile.read(path)).flatMap { Int32($0.filter(\.isNumber)) }
            close(descriptor)
            let who = holder.map { "another galley serve (pid \($0))" } ?? "another galley serve"
            throw StorageLockError(
                message:
                    "the storage folder \(folder) is in use by \(who); stop it, or give this host its own storage.path"
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}

struct StorageLockError: Error, Sendable {
    var message: String
}
