import CGalleySystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What no worker may see: `covered` folders are replaced by an empty one before the worker's own
/// folders are put back into them; `hidden` files and folders are emptied after that.
struct PrivatePaths: Sendable, Equatable {
    /// The application's folder, which names it.
    var application = ""
    /// The application's folder (runtime.json's) and the storage folder.
    var covered: [String] = []
    /// runtime.json, the storage folder and every function's folder (the worker's own is kept).
    var hidden: [String] = []
}

/// What keeps a function's worker processes from the host's files and from other functions.
///
/// - A host running as root gives each function an identity of its own (a uid and gid from
///   61184–65519, the range systemd's `DynamicUser` takes, skipping any /etc/passwd or /etc/group
///   uses, chosen by a hash of the application's folder and the function's name) and a mount namespace per environment in which the application's folder, the storage
///   folder and other functions' folders are not there, its own folder is read-only, and `/tmp`
///   is a private tmpfs, as on Lambda. Under its own uid a worker cannot read the host's
///   `/proc/PID/environ`, signal the host or another function, or trace them.
/// - An unprivileged host keeps its own uid but gives each environment the same file view in a
///   user and mount namespace, where the kernel allows them, and makes itself non-dumpable so that
///   its `/proc` entries are root's.
/// - Otherwise only the non-dumpable host is left, and the start line says so.
final class Sandbox: Sendable {
    enum Mode: Sendable, Equatable {
        /// Root: an identity per function and a mount namespace per environment.
        case identities
        /// Unprivileged: a user and mount namespace per environment.
        case namespaces
        /// Unprivileged, where the kernel refuses user namespaces.
        case none
    }

    /// A function's uid and gid.
    struct Identity: Sendable, Equatable {
        var uid: uid_t
        var gid: gid_t
    }

    /// How one worker process is started.
    struct Plan: Sendable {
        var identity: Identity?
        var userNamespace: Bool
        var mounts: [Mount]
        /// The working folder inside the sandbox.
        var directory: String
        /// The executable's path, resolved on PATH by the host.
        var executable: String
        /// `galley worker` is run through a descriptor opened before the identity changes: the
        /// host's binary need not be reachable under it (its path is `/proc/PID/exe`).
        var execByDescriptor: Bool

        struct Mount: Sendable, Equatable {
            var kind: galley_mount_kind
            var source: String
            var target: String
        }
    }

    let mode: Mode
    private let identities = Mutex<[String: Identity]>([:])
    private let taken: Set<UInt32>

    /// The range systemd allocates `DynamicUser` identities from.
    static let firstID: UInt32 = 61184
    static let lastID: UInt32 = 65519

    /// One per process, chosen at first use.
    static let shared = Sandbox(mode: detect())

    init(mode: Mode) {
        self.mode = mode
        self.taken = Self.idsInUse()
        // The host's own /proc entries (environ, mem, fd) become root's: a process of the same
        // uid cannot read them.
        galley_set_undumpable()
    }

    private static func detect() -> Mode {
        if geteuid() == 0 { return .identities }
        return galley_can_unshare_user() != 0 ? .namespaces : .none
    }

    /// What is in force, for the log line at start and the README.
    var description: String {
        switch mode {
        case .identities:
            "a uid per function (from \(Self.firstID)), a mount namespace per environment"
        case .namespaces:
            "a user and mount namespace per environment (the host's uid: run as root for a uid per function)"
        case .none:
            "none but a non-dumpable host (user namespaces are not allowed here; run as root for a uid per function)"
        }
    }

    /// The identity `function` of the application in `application` runs as: the same for every
    /// environment of it and across restarts (a hash of the two into the range), and never one
    /// another function of this host has.
    func identity(for function: String, application: String) -> Identity? {
        guard mode == .identities else { return nil }
        let key = application + "\u{0}" + function
        return identities.withLock { assigned in
            if let known = assigned[key] { return known }
            let span = UInt64(Self.lastID - Self.firstID + 1)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let used = Set(assigned.values.map(\.uid))
            var id = Self.firstID + UInt32(hash % span)
            for _ in 0..<span where taken.contains(id) || used.contains(uid_t(id)) {
                id = id == Self.lastID ? Self.firstID : id + 1
            }
            let identity = Identity(uid: uid_t(id), gid: gid_t(id))
            assigned[key] = identity
            return identity
        }
    }

    /// The plan for a worker of `function` started by `launch`, kept away from `paths`.
    func plan(for function: String, launch: WorkerLaunch, paths: PrivatePaths) -> Plan? {
        guard mode != .none else { return nil }
        let identity = identity(for: function, application: paths.application)
        let uid = identity?.uid ?? getuid()
        let gid = identity?.gid ?? getgid()
        var covers = ["/tmp"] + paths.covered.filter { Self.isFolder($0) }
        var binds: [String] = []
        // The function's own folder, exactly; the folders a runtime resolves from PATH (and the
        // command's executable), from the top folder the identity could not enter: pyenv's
        // interpreters under a 0700 /root, say.
        let directory = launch.directory.map(Self.absolute)
        if let directory { binds.append(directory) }
        var runtimePaths = (launch.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        // The host's own binary is the child's /proc/self/exe until the exec: a non-dumpable
        // host's /proc/PID is not the child's to read.
        let hostBinary = "/proc/\(getpid())/exe"
        let executable =
            launch.arguments[0] == hostBinary
            ? "/proc/self/exe"
            : launch.usesChannel ? launch.arguments[0] : Self.resolve(launch.arguments[0], in: launch)
        if !launch.usesChannel { runtimePaths.append(executable) }
        for path in runtimePaths where path.hasPrefix("/") {
            guard let blocked = Self.firstClosedFolder(on: path, uid: uid, gid: gid) else { continue }
            covers.append(blocked)
            binds.append(Self.child(of: blocked, on: path))
        }
        // Shallow first, so that a cover inside another is skipped rather than shadowing a bind.
        covers = Array(Set(covers)).sorted { $0.count < $1.count }
        binds = Array(Set(binds.filter { !$0.isEmpty })).sorted { $0.count < $1.count }
        var mounts = covers.map { folder in
            Plan.Mount(
                kind: GALLEY_MOUNT_COVER,
                source: folder == "/tmp" ? "mode=1777,size=512m" : "mode=755,size=64k",
                target: folder
            )
        }
        mounts += binds.map { Plan.Mount(kind: GALLEY_MOUNT_BIND, source: "", target: $0) }
        // What a bind brought back into view that is not the function's (its folder may be the
        // application's own): never the function's folder or one it is in.
        let own = directory.map { [$0] } ?? []
        mounts += paths.hidden.filter { path in !own.contains { $0 == path || $0.hasPrefix(path + "/") } }.map {
            Plan.Mount(kind: GALLEY_MOUNT_HIDE, source: "mode=000,size=4k", target: $0)
        }
        return Plan(
            identity: identity,
            userNamespace: mode == .namespaces,
            mounts: mounts,
            directory: directory ?? "/tmp",
            executable: executable,
            execByDescriptor: launch.usesChannel
        )
    }

    /// The executable `name` resolves to on the worker's PATH, or in its folder.
    private static func resolve(_ name: String, in launch: WorkerLaunch) -> String {
        if name.hasPrefix("/") { return name }
        if name.contains("/") { return absolute((launch.directory ?? ".") + "/" + name) }
        for folder in (launch.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return name
    }

    /// The first folder on the way to `path` that `uid`/`gid` may not enter.
    static func firstClosedFolder(on path: String, uid: uid_t, gid: gid_t) -> String? {
        var folder = ""
        for component in path.split(separator: "/").dropLast() {
            folder += "/" + component
            var info = stat()
            guard stat(folder, &info) == 0 else { return nil }
            let mode = info.st_mode
            let enters =
                info.st_uid == uid
                ? mode & S_IXUSR != 0 : info.st_gid == gid ? mode & S_IXGRP != 0 : mode & S_IXOTH != 0
            if !enters { return folder }
        }
        return nil
    }

    /// The entry of `folder` that `path` goes through: `/root/.pyenv` for `/root` and `/root/.pyenv/shims`.
    static func child(of folder: String, on path: String) -> String {
        guard path.hasPrefix(folder + "/") else { return "" }
        let rest = path.dropFirst(folder.count + 1)
        return folder + "/" + (rest.split(separator: "/").first.map(String.init) ?? "")
    }

    /// `path` with symbolic links and `.` resolved, or as it is when it does not exist.
    static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func isFolder(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The uids and gids named in /etc/passwd and /etc/group.
    private static func idsInUse() -> Set<UInt32> {
        var ids: Set<UInt32> = []
        for file in ["/etc/passwd", "/etc/group"] {
            for line in ((try? ProcFile.read(file)) ?? "").split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count > 3, let uid = UInt32(fields[2]) { ids.insert(uid) }
                if file == "/etc/passwd", fields.count > 3, let gid = UInt32(fields[3]) { ids.insert(gid) }
            }
        }
        return ids
    }
}
