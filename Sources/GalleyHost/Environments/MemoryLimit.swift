import CGalleySystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How a function's `memory` is enforced on its worker processes: a memory cgroup per
/// environment when the host can create one (cgroup v2, else v1), else `RLIMIT_DATA`.
///
/// In a cgroup, a worker past its limit is killed by the kernel's OOM killer and the host can
/// tell (`oom_kill` in the cgroup's events), so the caller gets `Runtime.OutOfMemory`. Under
/// `RLIMIT_DATA` allocations past the limit fail inside the worker, which ends it with a crash
/// (`Runtime.ExitError`) or, in Python, a `MemoryError`.
final class MemoryLimiter: Sendable {
    enum Mechanism: Sendable, Equatable {
        case cgroupV2
        case cgroupV1
        case rlimit
    }

    let mechanism: Mechanism
    /// The host's own cgroup folder, under which each environment gets one.
    let folder: String?
    /// Where process counts are limited: `folder` itself on cgroup v2, the v1 `pids` hierarchy's
    /// twin of it on v1, or none.
    let pidsFolder: String?
    private let counter = Atomic<Int>(0)

    /// Processes (and threads) an environment may hold at once, as on Lambda.
    static let maxProcesses = 1024

    /// One limiter per process: the host's cgroup folder is made once and removed at exit.
    static let shared = MemoryLimiter.detect()

    /// What is in force, for the log line at start and the README: `cgroup v2`, `cgroup v1`, `RLIMIT_DATA`.
    var description: String {
        switch mechanism {
        case .cgroupV2: "cgroup v2 (\(folder ?? ""))"
        case .cgroupV1: "cgroup v1 (\(folder ?? ""))"
        case .rlimit: "RLIMIT_DATA"
        }
    }

    private init(mechanism: Mechanism, folder: String?, pidsFolder: String? = nil) {
        self.mechanism = mechanism
        self.folder = folder
        self.pidsFolder = pidsFolder
    }

    private static func detect() -> MemoryLimiter {
        guard let lines = try? ProcFile.read("/proc/self/cgroup") else {
            return MemoryLimiter(mechanism: .rlimit, folder: nil)
        }
        let name = "galley-\(getpid())"
        for line in lines.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let own = String(parts[2]).trimmingSuffix("/")
            if parts[0] == "0", parts[1].isEmpty {
                for mount in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                    let base = mount + own
                    guard let controllers = try? ProcFile.read(base + "/cgroup.controllers"),
                        controllers.split(separator: " ").contains(where: { $0.hasPrefix("memory") })
                    else { continue }
                    if let folder = makeFolder(base + "/" + name, probe: "memory.max") {
                        _ = ProcFile.write(folder + "/cgroup.subtree_control", "+memory")
                        let pids = ProcFile.write(folder + "/cgroup.subtree_control", "+pids")
                        return MemoryLimiter(mechanism: .cgroupV2, folder: folder, pidsFolder: pids ? folder : nil)
                    }
                }
            } else if parts[1].split(separator: ",").contains("memory") {
                if let folder = makeFolder("/sys/fs/cgroup/memory" + own + "/" + name, probe: "memory.limit_in_bytes") {
                    return MemoryLimiter(mechanism: .cgroupV1, folder: folder, pidsFolder: pidsV1(lines, name: name))
                }
            }
        }
        return MemoryLimiter(mechanism: .rlimit, folder: nil)
    }

    /// The v1 `pids` hierarchy's folder for this host, when the kernel has one.
    private static func pidsV1(_ lines: String, name: String) -> String? {
        for line in lines.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1].split(separator: ",").contains("pids") else { continue }
            let own = String(parts[2]).trimmingSuffix("/")
            return makeFolder("/sys/fs/cgroup/pids" + own + "/" + name, probe: "pids.max")
        }
        return nil
    }

    private static func makeFolder(_ path: String, probe: String) -> String? {
        removeStaleFolders(besides: path)
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { return nil }
        guard access(path + "/" + probe, W_OK) == 0 else {
            rmdir(path)
            return nil
        }
        atexit { MemoryLimiter.removeFolder() }
        return path
    }

    /// Removes the empty cgroups of Galley hosts that were killed before they could clean up.
    private static func removeStaleFolders(besides path: String) {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        guard let directory = opendir(parent) else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("galley-"), let pid = Int32(name.dropFirst(7)), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            let stale = parent + "/" + name
            if let environments = opendir(stale) {
                while let child = readdir(environments) {
                    let childName = withUnsafeBytes(of: child.pointee.d_name) {
                        String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    // What a killed host's environments left running ends with them.
                    if childName.hasPrefix("env-") { ProcessGroup.killAll(in: stale + "/" + childName) }
                }
                closedir(environments)
            }
            rmdir(stale)
        }
    }

    private static func removeFolder() {
        if let folder = shared.folder { rmdir(folder) }
        if let pids = shared.pidsFolder, pids != shared.folder { rmdir(pids) }
    }

    /// Limits `pid` to `megabytes`; returns the cgroup it was put in, if any.
    func limit(_ pid: pid_t, megabytes: Int) -> MemoryCage? {
        let bytes = megabytes * 1024 * 1024
        guard let folder else {
            _ = galley_set_limit(pid, Int32(RLIMIT_DATA.rawValue), UInt64(bytes))
            return nil
        }
        let name = "/env-\(counter.add(1, ordering: .relaxed).newValue)"
        let cage = MemoryCage(
            path: folder + name,
            mechanism: mechanism,
            limitBytes: bytes,
            pidsPath: pidsFolder.map { $0 + name }
        )
        guard mkdir(cage.path, 0o755) == 0 || errno == EEXIST else { return nil }
        if let pids = cage.pidsPath {
            if pids != cage.path { _ = mkdir(pids, 0o755) }
            _ = ProcFile.write(pids + "/pids.max", "\(Self.maxProcesses)")
            if pids != cage.path { _ = ProcFile.write(pids + "/cgroup.procs", "\(pid)") }
        }
        switch mechanism {
        case .cgroupV2:
            _ = ProcFile.write(cage.path + "/memory.max", "\(bytes)")
            _ = ProcFile.write(cage.path + "/memory.swap.max", "0")
            // A runtime's child processes go with it, as when Lambda ends an environment.
            _ = ProcFile.write(cage.path + "/memory.oom.group", "1")
        default:
            // Charges made before the move count too, so the peak is the whole process's.
            _ = ProcFile.write(cage.path + "/memory.move_charge_at_immigrate", "3")
            _ = ProcFile.write(cage.path + "/memory.limit_in_bytes", "\(bytes)")
            _ = ProcFile.write(cage.path + "/memory.memsw.limit_in_bytes", "\(bytes)")
            // Where swap is not accounted, keep the worker's pages out of it, and never inherit
            // a disabled OOM killer: past its limit the worker ends instead of crawling on.
            _ = ProcFile.write(cage.path + "/memory.swappiness", "0")
            _ = ProcFile.write(cage.path + "/memory.oom_control", "0")
        }
        guard ProcFile.write(cage.path + "/cgroup.procs", "\(pid)") else {
            cage.remove()
            return nil
        }
        return cage
    }
}

/// One environment's memory cgroup.
struct MemoryCage: Sendable {
    let path: String
    let mechanism: MemoryLimiter.Mechanism
    let limitBytes: Int
    /// The cgroup that counts the environment's processes (`path` itself on v2).
    var pidsPath: String?

    /// Every process in the environment, however it was started (a `setsid` child included).
    var members: [pid_t]? {
        guard mechanism != .rlimit else { return nil }
        var members = Set(ProcessGroup.members(of: path))
        if let pidsPath, pidsPath != path { members.formUnion(ProcessGroup.members(of: pidsPath)) }
        return Array(members)
    }

    /// Ends every process in the environment: what a function left running dies with it.
    func killAll() {
        ProcessGroup.killAll(in: path)
        if let pidsPath, pidsPath != path { ProcessGroup.killAll(in: pidsPath) }
    }

    /// How many times the kernel's OOM killer ended a process in it.
    var oomKills: Int {
        let file = mechanism == .cgroupV2 ? "/memory.events" : "/memory.oom_control"
        guard let text = try? ProcFile.read(path + file) else { return 0 }
        return Self.counters(text)["oom_kill"] ?? 0
    }

    /// Whether the cgroup is out of memory: its OOM killer ran or (v1) it is stuck at its limit,
    /// (v2) an allocation was about to fail, or it hit its limit with anonymous memory filling 90%, where
    /// the kernel reclaims the worker's own code pages over and over instead of killing it. A
    /// worker that times out in that state was starved of memory, not slow. Read it before the
    /// worker is stopped.
    var isOutOfMemory: Bool {
        let v2 = mechanism == .cgroupV2
        let events =
            (try? ProcFile.read(path + (v2 ? "/memory.events" : "/memory.oom_control"))).map(Self.counters) ?? [:]
        if events.contains(where: { ["oom", "oom_kill", "under_oom"].contains($0.key) && $0.value > 0 }) {
            return true
        }
        let limitHits =
            v2 ? events["max"] : (try? ProcFile.read(path + "/memory.failcnt")).flatMap { Int($0.filter(\.isNumber)) }
        guard let limitHits, limitHits > 0, let text = try? ProcFile.read(path + "/memory.stat"),
            let anonymous = Self.counters(text)[v2 ? "anon" : "rss"]
        else { return false }
        return anonymous >= limitBytes / 10 * 9
    }

    /// The `name value` lines of a cgroup file.
    private static func counters(_ text: String) -> [Substring: Int] {
        var counters: [Substring: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int(parts[1]) { counters[parts[0]] = value }
        }
        return counters
    }

    /// The peak memory of the cgroup in MB, readable after its process has exited.
    var peakMemoryMB: Int? {
        let file = mechanism == .cgroupV2 ? "/memory.peak" : "/memory.max_usage_in_bytes"
        guard let text = try? ProcFile.read(path + file), let bytes = Int(text.filter(\.isNumber)) else { return nil }
        return (bytes + (1 << 20) - 1) >> 20
    }

    /// Removes the cgroup; its processes must have exited.
    func remove() {
        rmdir(path)
        if let pidsPath, pidsPath != path { rmdir(pidsPath) }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

/// The processes of one cgroup folder.
enum ProcessGroup {
    static func members(of folder: String) -> [pid_t] {
        ((try? ProcFile.read(folder + "/cgroup.procs")) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    /// SIGKILLs every member until none is left (a process forking meanwhile is caught on the next
    /// round; the `pids` limit bounds how many there can be), then removes the folder.
    static func killAll(in folder: String) {
        // cgroup v2 kills the whole group at once.
        _ = ProcFile.write(folder + "/cgroup.kill", "1")
        for _ in 0..<500 {
            let members = members(of: folder)
            if members.isEmpty { break }
            for member in members { kill(member, SIGKILL) }
            usleep(1000)
        }
        rmdir(folder)
    }
}
