#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Who is at the other end of a loopback TCP connection: the Runtime API of a `command`
/// environment answers only the environment's own processes.
///
/// The kernel lists every TCP socket of the host's network namespace in `/proc/net/tcp`, with its
/// inode; the process that holds that inode among its descriptors is the peer.
enum LoopbackPeer {
    /// The inode of the peer's socket of the IPv4 connection from `peerPort` to `localPort`.
    static func socketInode(peerPort: Int, localPort: Int) -> String? {
        guard let table = try? ProcFile.read("/proc/self/net/tcp") else { return nil }
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, port(of: fields[1]) == peerPort, port(of: fields[2]) == localPort else {
                continue
            }
            return String(fields[9])
        }
        return nil
    }

    /// `0100007F:1F90` → 8080.
    private static func port(of address: Substring) -> Int? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...], radix: 16)
    }

    /// Whether one of `processes` holds the socket `inode` open.
    static func isHeld(_ inode: String, byAnyOf processes: [pid_t]) -> Bool {
        let target = "socket:[\(inode)]"
        for pid in processes {
            guard let folder = opendir("/proc/\(pid)/fd") else { continue }
            defer { closedir(folder) }
            var buffer = [CChar](repeating: 0, count: 64)
            while let entry = readdir(folder) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard name.first?.isNumber == true else { continue }
                let count = readlink("/proc/\(pid)/fd/\(name)", &buffer, buffer.count - 1)
                guard count > 0 else { continue }
                let link = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if link == target { return true }
            }
        }
        return false
    }

    /// `pid` and every process descended from it that is still running.
    static func family(of pid: pid_t) -> [pid_t] {
        var family: [pid_t] = []
        var next = [pid]
        while let current = next.popLast(), family.count < 4096 {
            family.append(current)
            guard let tasks = opendir("/proc/\(current)/task") else { continue }
            defer { closedir(tasks) }
            while let entry = readdir(tasks) {
                let task = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard task.first?.isNumber == true,
                    let children = try? ProcFile.read("/proc/\(current)/task/\(task)/children")
                else { continue }
                next += children.split(separator: " ").compactMap { pid_t($0) }
            }
        }
        return family
    }
}
