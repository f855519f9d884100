import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The floor under a worker-process invocation: what two processes on one core pay to exchange one
/// message each way over a Unix socket pair, with no Swift runtime work in between.
///
/// `galley-bench pingpong-echo` answers every message on descriptor 3 with a message of the same
/// size; `galley-bench pingpong-drive K ROUNDS` talks to K of them on descriptors 3… (sending to all
/// K, then reading all K answers, as a host with K invocations in flight does) and prints round
/// trips per second. Everything runs under `taskset -c 0`, as the HTTP benchmark's server does.
struct PingPongBenchmark {
    let binaries: String
    var messageSize = 128
    var rounds = 20_000

    func run() -> String {
        guard let taskset = which("taskset") else { return "### IPC floor\n\nSkipped: taskset is needed.\n" }
        var text = """
            ### The floor: one message each way between two processes on one core

            `galley-bench pingpong-drive` and K `pingpong-echo` processes, all pinned to core 0
            (`taskset -c 0`), exchange \(messageSize)-byte messages over Unix socket pairs: the drive
            process writes one message to each of the K, then reads the K answers, \(rounds) times.
            This is the cost of the channel alone (two context switches and four system calls per round
            trip), with no HTTP, JSON or Swift concurrency on either side.

            | echo processes (K) | round trips/s | µs per round trip |
            |---|---|---|

            """
        for count in [1, 32] {
            let perSecond = measure(count: count, taskset: taskset)
            text += "| \(count) | \(format(perSecond, 0)) | \(format(1_000_000 / perSecond)) |\n"
        }
        return text
    }

    private func measure(count: Int, taskset: String) -> Double {
        var driveEnds: [Int32] = []
        var echoes: [pid_t] = []
        for _ in 0..<count {
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                fatalError("socketpair failed")
            }
            // Out of the way of the descriptors the children get.
            let (drive, echo) = (fcntl(pair[0], F_DUPFD_CLOEXEC, 100), fcntl(pair[1], F_DUPFD_CLOEXEC, 100))
            close(pair[0])
            close(pair[1])
            driveEnds.append(drive)
            echoes.append(
                spawn([taskset, "-c", "0", "\(binaries)/galley-bench", "pingpong-echo"], descriptors: [echo])
            )
            close(echo)
        }
        let output = captureWithDescriptors(
            [taskset, "-c", "0", "\(binaries)/galley-bench", "pingpong-drive", String(count), String(rounds)],
            descriptors: driveEnds
        )
        driveEnds.forEach { close($0) }
        for pid in echoes { waitForProcess(pid) }
        guard let perSecond = Double(output.filter { !$0.isWhitespace }) else {
            fatalError("pingpong-drive printed '\(output)'")
        }
        return perSecond
    }

    /// `pingpong-echo`: answers each message on descriptor 3 until it closes.
    static func echo(messageSize: Int = 128) {
        var buffer = [UInt8](repeating: 0, count: messageSize)
        while Descriptors.readFully(3, &buffer) {
            _ = buffer.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        }
    }

    /// `pingpong-drive K ROUNDS`: prints round trips per second over descriptors 3..<3+K.
    static func drive(_ arguments: [String], messageSize: Int = 128) {
        let count = Int(arguments.first ?? "") ?? 1
        let rounds = Int(arguments.dropFirst().first ?? "") ?? 10_000
        var buffer = [UInt8](repeating: 7, count: messageSize)
        let started = ContinuousClock.now
        for _ in 0..<rounds {
            for index in 0..<count {
                _ = buffer.withUnsafeBytes { write(Int32(3 + index), $0.baseAddress, $0.count) }
            }
            for index in 0..<count where !Descriptors.readFully(Int32(3 + index), &buffer) {
                fatalError("echo went away")
            }
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(Double(rounds * count) / seconds)
    }

    /// Starts `arguments` with `descriptors` as its descriptors 3, 4, ….
    private func spawn(_ arguments: [String], descriptors: [Int32], output: Int32? = nil) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        for (index, descriptor) in descriptors.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, descriptor, Int32(3 + index))
        }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        guard posix_spawn(&pid, arguments[0], &actions, nil, argv, environ) == 0 else {
            fatalError("cannot start \(arguments[0])")
        }
        return pid
    }

    private func captureWithDescriptors(_ arguments: [String], descriptors: [Int32]) -> String {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { fatalError("pipe failed") }
        _ = fcntl(pipe[0], F_SETFD, FD_CLOEXEC)
        let pid = spawn(arguments, descriptors: descriptors, output: pipe[1])
        close(pipe[1])
        let output = readToEnd(pipe[0])
        waitForProcess(pid)
        return output
    }
}
