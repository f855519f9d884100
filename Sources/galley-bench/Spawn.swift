#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program with a file as its stdin and discards its output; returns the wall time.
func timeProcess(_ path: String, _ arguments: [String], stdinFile: String) -> Duration {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdinFile, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let started = ContinuousClock.now
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard spawned == 0 else { fatalError("cannot start \(path): error \(spawned)") }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let elapsed = ContinuousClock.now - started
    guard status == 0 else { fatalError("\(path) \(arguments) exited with status \(status)") }
    return elapsed
}

/// Starts a program with no stdin and its output (stdout and stderr) discarded; returns its pid.
func spawnProcess(_ path: String, _ arguments: [String]) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard spawned == 0 else { fatalError("cannot start \(path): error \(spawned)") }
    return pid
}

/// Waits for a process started with ``spawnProcess(_:_:)``; stops the benchmark if it failed.
func waitForProcess(_ pid: pid_t) {
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    guard status == 0 else { fatalError("worker \(pid) exited with status \(status)") }
}

/// Sorted samples with their median and percentiles.
struct Samples {
    let values: [Double]

    init(_ values: [Double]) { self.values = values.sorted() }

    func percentile(_ p: Double) -> Double {
        let index = min(values.count - 1, max(0, Int((p / 100 * Double(values.count)).rounded(.up)) - 1))
        return values[index]
    }

    var median: Double {
        let count = values.count
        return count % 2 == 1 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func format(_ value: Double, _ decimals: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    let whole = scaled / Int(scale)
    var fraction = String(abs(scaled) % Int(scale))
    while fraction.count < decimals { fraction = "0" + fraction }
    return decimals == 0 ? "\(whole)" : "\(whole).\(fraction)"
}
