import CGalleySystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A child process started with `posix_spawn` (no shell), in a process group of its own, with
/// its stdout and stderr merged into one pipe the host reads.
///
/// The child starts with default signal dispositions and an empty signal mask (the host blocks
/// some signals for ServiceLifecycle), `/dev/null` as stdin and no other inherited descriptor.
final class ChildProcess: Sendable {
    /// How a child ended, as Go's `os.ProcessState` prints it (and so Lambda's error messages).
    struct Termination: Sendable, Equatable, CustomStringConvertible {
        var exitStatus: Int32?
        var signal: Int32?

        var description: String {
            if let signal { return "signal: \(Self.name(of: signal))" }
            return "exit status \(exitStatus ?? -1)"
        }

        static func name(of signal: Int32) -> String {
            switch signal {
            case SIGKILL: return "killed"
            case SIGABRT: return "aborted"
            case SIGTERM: return "terminated"
            default:
                guard let text = strsignal(signal) else { return "signal \(signal)" }
                return String(cString: text).lowercased()
            }
        }
    }

    /// Why a child could not be started.
    struct SpawnError: Error, CustomStringConvertible {
        var executable: String
        var errno: Int32
        /// What failed on the way into the sandbox, when it was not the exec.
        var step: String?
        var description: String {
            let reason = String(cString: strerror(errno))
            guard let step, step != "exec" else { return "cannot start '\(executable)': \(reason)" }
            return "cannot start '\(executable)': \(step): \(reason)"
        }
    }

    /// The descriptor a worker finds its channel to the host on.
    static let channelDescriptor: Int32 = 3

    let pid: pid_t
    /// The read end of the child's merged stdout and stderr; an ``OutputPump`` reads and closes it.
    let output: Int32
    private let termination = Once<Termination>()

    /// Starts `arguments[0]` (searched on PATH when it has no '/') in `directory`. `channel`, when
    /// given, is the child's end of a socket pair: the child gets it as descriptor
    /// ``channelDescriptor`` and the caller's copy is closed.
    init(
        arguments: [String],
        environment: [String: String],
        directory: String?,
        channel: Int32? = nil,
        sandbox: Sandbox.Plan? = nil
    ) throws(SpawnError) {
        precondition(!arguments.isEmpty)
        // Keep the channel clear of the descriptors the child gets (dup2 onto itself would keep
        // close-on-exec set).
        var channel = channel
        if let low = channel, low < 10 {
            channel = fcntl(low, F_DUPFD_CLOEXEC, 10)
            close(low)
            guard channel! >= 0 else { throw SpawnError(executable: arguments[0], errno: errno) }
        }
        var fds: [Int32] = [0, 0]
        guard galley_pipe_cloexec(&fds) == 0 else { throw SpawnError(executable: arguments[0], errno: errno) }
        let (readEnd, writeEnd) = (fds[0], fds[1])

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var (status, step): (Int32, String?) = (0, nil)
        if let sandbox {
            (status, step) = Self.spawn(
                sandbox.executable,
                argv: argv,
                envp: envp,
                output: writeEnd,
                channel: channel,
                sandbox: sandbox,
                pid: &pid
            )
        } else {
            status = Self.spawn(
                arguments[0],
                argv: argv,
                envp: envp,
                output: writeEnd,
                channel: channel,
                directory: directory,
                pid: &pid
            )
        }
        close(writeEnd)
        if let channel { close(channel) }
        guard status == 0 else {
            close(readEnd)
            throw SpawnError(executable: arguments[0], errno: status, step: step)
        }
        self.pid = pid
        self.output = readEnd
        let child = pid
        let termination = self.termination
        Self.running.withLock { $0[pid] = self }
        // One thread per child waits for it, so that the host never collects another's child.
        let waiter = BlockingThread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            let signal = status & 0x7F
            _ = ChildProcess.running.withLock { $0.removeValue(forKey: child) }
            termination.resolve(
                signal == 0
                    ? Termination(exitStatus: (status >> 8) & 0xFF, signal: nil)
                    : Termination(exitStatus: nil, signal: signal)
            )
        }
        waiter.start()
    }

    /// `posix_spawn`, for a worker with no sandbox.
    private static func spawn(
        _ executable: String,
        argv: [UnsafeMutablePointer<CChar>?],
        envp: [UnsafeMutablePointer<CChar>?],
        output writeEnd: Int32,
        channel: Int32?,
        directory: String?,
        pid: inout pid_t
    ) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        if let channel {
            posix_spawn_file_actions_adddup2(&actions, channel, Self.channelDescriptor)
            galley_spawn_addclosefrom(&actions, Self.channelDescriptor + 1)
        } else {
            galley_spawn_addclosefrom(&actions, 3)
        }
        if let directory { galley_spawn_addchdir(&actions, directory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )

        let status =
            executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            : posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        if status == 0 { galley_set_batch(pid) }
        return status
    }

    /// `galley_spawn`: into the sandbox's namespaces, under the function's identity.
    private static func spawn(
        _ executable: String,
        argv: [UnsafeMutablePointer<CChar>?],
        envp: [UnsafeMutablePointer<CChar>?],
        output: Int32,
        channel: Int32?,
        sandbox: Sandbox.Plan,
        pid: inout pid_t
    ) -> (status: Int32, step: String?) {
        let strings = sandbox.mounts.map { (strdup($0.source), strdup($0.target)) }
        defer {
            strings.forEach {
                free($0.0); free($0.1)
            }
        }
        var mounts = zip(sandbox.mounts, strings).map { mount, text in
            galley_mount(kind: Int32(mount.kind.rawValue), source: text.0, target: text.1)
        }
        var failedStep: UnsafePointer<CChar>?
        let status = executable.withCString { path in
            sandbox.directory.withCString { directory in
                argv.withUnsafeBufferPointer { argv in
                    envp.withUnsafeBufferPointer { envp in
                        mounts.withUnsafeMutableBufferPointer { mounts in
                            var request = galley_spawn_request(
                                path: path,
                                exec_by_descriptor: sandbox.execByDescriptor ? 1 : 0,
                                argv: argv.baseAddress,
                                envp: envp.baseAddress,
                                directory: directory,
                                output: output,
                                channel: channel ?? -1,
                                isolate_files: 1,
                                user_namespace: sandbox.userNamespace ? 1 : 0,
                                mounts: mounts.baseAddress,
                                mount_count: Int32(mounts.count),
                                uid: sandbox.identity?.uid ?? uid_t.max,
                                gid: sandbox.identity?.gid ?? gid_t.max
                            )
                            return galley_spawn(&request, &pid, &failedStep)
                        }
                    }
                }
            }
        }
        return (status, status == 0 ? nil : failedStep.map { String(cString: $0) })
    }

    /// Every child that has not been collected yet.
    private static let running = Mutex<[pid_t: ChildProcess]>([:])

    /// Kills every child still running and waits for them: the last step of a host's shutdown.
    static func killAll() async {
        let children = running.withLock { Array($0.values) }
        for child in children { child.kill(SIGKILL) }
        for child in children { _ = await child.waitForExit() }
    }

    /// Sends `signal` to the child's whole process group.
    func kill(_ signal: Int32 = SIGKILL) {
        guard termination.value == nil else { return }
        _ = Glibc.kill(-pid, signal)
    }

    /// Calls `body` once, when the child has exited and been collected.
    func onExit(_ body: @escaping @Sendable (Termination) -> Void) {
        termination.onResolve(body)
    }

    /// How the child ended, or `nil` while it runs.
    var exited: Termination? { termination.value }

    /// Waits until the child has exited.
    func waitForExit() async -> Termination {
        await withCheckedContinuation { continuation in
            termination.onResolve { continuation.resume(returning: $0) }
        }
    }

    /// The child's peak resident set size in MB (`VmHWM`), or `nil` once it has exited.
    var peakMemoryMB: Int? {
        guard let status = try? ProcFile.read("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.dropFirst(6).filter(\.isNumber)
            return Int(kilobytes).map { ($0 + 1023) / 1024 }
        }
        return nil
    }
}

/// A minimal thread, for blocking system calls that must stay off Swift's cooperative threads.
final class BlockingThread: Sendable {
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 256 * 1024)
        pthread_create(
            &thread,
            &attributes,
            { pointer in
                let thread = Unmanaged<BlockingThread>.fromOpaque(pointer!).takeRetainedValue()
                thread.body()
                return nil
            },
            box
        )
        pthread_attr_destroy(&attributes)
    }
}

/// Small files under /proc and /sys, read without Foundation.
enum ProcFile {
    struct ReadError: Error {}

    static func read(_ path: String) throws(ReadError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError() }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, 4096) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ path: String, _ text: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return text.utf8.withContiguousStorageIfAvailable { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            == text.utf8.count
    }
}
