#if canImport(Glibc)
    import Glibc
#endif

/// `galley serve` against a bare Hummingbird server, both pinned to core 0 with one event loop,
/// loaded by wrk pinned to core 1: warm `hello` through the Invoke API (in worker processes and
/// inline) and through a route. Galley's worker processes inherit the pinning to core 0.
struct HTTPBenchmark {
    let binaries: String
    let workDirectory: String
    var seconds = 10
    var rounds = 3
    /// The observability cost is a few percent: more rounds, so that the median's spread is smaller than it.
    var observabilityRounds = 7
    var connections = 32

    struct Result {
        /// 2xx answers per second.
        var requestsPerSecond: Double
        var non2xx: Double = 0
        var p50: Double
        var p99: Double
        /// The server's CPU time (all its threads, user and system) per answered request, in µs.
        var cpuMicroseconds: Double = 0
    }

    func run() throws -> String {
        guard let wrk = which("wrk"), let taskset = which("taskset") else {
            return "### HTTP\n\nSkipped: wrk and taskset are needed (`apt-get install -y wrk util-linux`).\n"
        }
        let config = "\(workDirectory)/http-runtime.json"
        write(
            file: config,
            #"{"functions": {"hello": {"handler": "Hello", "concurrency": 64, "warm": 32, "routes": ["GET /hello/{name}"]}, "#
                + #""hello-inline": {"handler": "Hello", "isolation": "inline", "concurrency": 1000, "#
                + #""routes": ["GET /hello-inline/{name}"]}}}"#
        )
        let script = postScript()
        // Each path's reference: the bare server doing what Lambda's contract asks of an invocation, in
        // its leanest form (`bench-hummingbird`'s modes): inline, or through 32 worker processes.
        // A worker path also gets its bound: the same work on SwiftNIO alone, answered from the event
        // loop with no Swift task (`eventloop`).
        let scenarios: [(name: String, path: String, lua: String?, reference: String, bound: String?)] = [
            ("Invoke API, worker processes", "/2015-03-31/functions/hello/invocations", script, "workers", "eventloop"),
            ("Invoke API, inline", "/2015-03-31/functions/hello-inline/invocations", script, "lambda", nil),
            ("route `GET /hello/Ada`, worker processes", "/hello/Ada", nil, "workers", "eventloop"),
            ("route `GET /hello-inline/Ada`, inline", "/hello-inline/Ada", nil, "lambda", nil),
        ]
        var text = """
            ### HTTP: warm `hello`, \(connections) connections, \(seconds) s per run, \(rounds) alternating rounds

            Servers pinned to core 0 with one event loop (`taskset -c 0`), wrk pinned to core 1
            (`wrk -t1 -c\(connections) -d\(seconds)s --latency`). Galley's logs go to /dev/null (still written).
            Figures: the median run; ratios against the bare Hummingbird server in the same run.

            Targets: worker processes ≥ 0.5x the bare server's throughput; Invoke API inline ≥ 0.9x, route
            inline ≥ 0.8x.

            Each scenario's **reference** is the bare server doing, by hand and at its leanest, only what
            Lambda's contract asks of every invocation (`bench-hummingbird PORT 1 lambda|workers`): a request
            id, START/END/REPORT in one write to stderr, the handler in a task of its own that a deadline
            could stop waiting for, for a route the least of an event (path and parameters) that the
            function decodes with `JSONDecoder`; and for worker processes the handler's work in one of 32
            processes over a socket pair (a length-prefixed message each way, no sandbox, no supervision,
            no store). The last column is Galley against it. A worker path's **bound**
            (`bench-hummingbird PORT 1 eventloop`) is the same worker work behind SwiftNIO's HTTP/1.1 alone,
            each request written to a worker and answered from the event loop: no Hummingbird, no Swift task,
            no hop to Swift's thread pool, what that design could reach at best.

            | scenario | server | req/s | p50 ms | p99 ms | throughput ratio | p99 ratio | against the reference |
            |---|---|---|---|---|---|---|---|

            """
        for scenario in scenarios {
            // Galley, the bare server, the path's reference and (for a worker path) its bound, in an
            // order that rotates each round.
            let hummingbird = [taskset, "-c", "0", "\(binaries)/bench-hummingbird", "PORT", "1"]
            var servers = [
                [
                    taskset, "-c", "0", "\(binaries)/galley", "serve", "--config", config, "--event-loops", "1",
                    "--port",
                ],
                hummingbird, hummingbird + [scenario.reference],
            ]
            if let bound = scenario.bound { servers.append(hummingbird + [bound]) }
            var results = [[Result]](repeating: [], count: servers.count)
            for round in 0..<rounds {
                for step in 0..<servers.count {
                    let index = (step + round) % servers.count
                    results[index].append(
                        try measure(
                            server: servers[index],
                            path: scenario.path,
                            lua: scenario.lua,
                            wrk: wrk,
                            taskset: taskset
                        )
                    )
                }
            }
            let (g, b, f) = (median(results[0]), median(results[1]), median(results[2]))
            /// A row beside Galley's: its figures and its ratios against the bare server.
            func row(_ label: String, _ r: Result) -> String {
                "| | \(label) | \(format(r.requestsPerSecond, 0)) | \(format(r.p50)) | \(format(r.p99)) "
                    + "| \(format(r.requestsPerSecond / b.requestsPerSecond))x | \(format(r.p99 / b.p99))x | |\n"
            }
            text +=
                "| \(scenario.name) | Galley | \(format(g.requestsPerSecond, 0)) | \(format(g.p50)) | \(format(g.p99)) "
            text +=
                "| **\(format(g.requestsPerSecond / b.requestsPerSecond))x** | **\(format(g.p99 / b.p99))x** "
            text += "| **\(format(g.requestsPerSecond / f.requestsPerSecond))x** |\n"
            text += row("reference (`\(scenario.reference)`)", f)
            if let bound = scenario.bound { text += row("bound (`\(bound)`)", median(results[3])) }
            text +=
                "| | bare Hummingbird | \(format(b.requestsPerSecond, 0)) | \(format(b.p50)) | \(format(b.p99)) | | | |\n"
        }
        return text
    }

    /// The Python function `py-echo` (awslambdaric, the Runtime API over loopback HTTP) beside the
    /// Swift `hello`, both in worker processes, through the Invoke API: reported, no target.
    func python() throws -> String {
        guard let wrk = which("wrk"), let taskset = which("taskset"), let interpreter = which("python3") else {
            return "### Python through the Invoke API\n\nSkipped: wrk, taskset and python3 are needed.\n"
        }
        let folder = "\(currentDirectory())/Functions/py-echo"
        guard access("\(folder)/app.py", R_OK) == 0,
            capture(interpreter, ["-c", "import awslambdaric; print('ok')"]).contains("ok")
        else {
            return "### Python through the Invoke API\n\nSkipped: run from the package root, with awslambdaric "
                + "installed (`pip install awslambdaric`).\n"
        }
        // One function per host, its 32 environments started and idle before wrk starts: Python's
        // start-up (a few hundred ms of CPU each) must not fall into the other's measurement.
        let configs = [
            "py-echo": #"{"functions": {"py-echo": {"command": ["python3", "-m", "awslambdaric", "app.handler"], "#
                + #""directory": "\#(folder)", "concurrency": 64, "warm": 32}}}"#,
            "hello": #"{"functions": {"hello": {"handler": "Hello", "concurrency": 64, "warm": 32}}}"#,
        ]
        for (function, text) in configs { write(file: "\(workDirectory)/\(function)-runtime.json", text) }
        let script = postScript()
        var results: [String: [Result]] = ["py-echo": [], "hello": []]
        for round in 0..<rounds {
            for function in round % 2 == 0 ? ["py-echo", "hello"] : ["hello", "py-echo"] {
                results[function]!.append(
                    try measure(
                        server: [
                            taskset, "-c", "0", "\(binaries)/galley", "serve", "--config",
                            "\(workDirectory)/\(function)-runtime.json", "--event-loops", "1", "--port",
                        ],
                        path: "/2015-03-31/functions/\(function)/invocations",
                        lua: script,
                        wrk: wrk,
                        taskset: taskset,
                        warm: (function, 32)
                    )
                )
            }
        }
        let python = median(results["py-echo"]!)
        let swift = median(results["hello"]!)
        return """
            ### Python through the Invoke API: `py-echo` beside `hello`, both in worker processes

            \(connections) connections, \(seconds) s per run, \(rounds) alternating rounds, pinned as above: one
            host per function, its 32 warm workers started and idle before wrk starts, all on core 0.
            `py-echo` runs under awslambdaric, which talks the Runtime API over loopback HTTP; `hello` is a
            Swift worker on its socket pair. No target.

            | function | req/s | p50 ms | p99 ms | against `hello` |
            |---|---|---|---|---|
            | `py-echo` (Python, awslambdaric) | \(format(python.requestsPerSecond, 0)) | \(format(python.p50)) | \(format(python.p99)) | \(format(python.requestsPerSecond / swift.requestsPerSecond))x |
            | `hello` (Swift) | \(format(swift.requestsPerSecond, 0)) | \(format(swift.p50)) | \(format(swift.p99)) | |

            """
    }

    /// wrk's script for the Invoke API: POST `{"name": "Ada"}`.
    private func postScript() -> String {
        let script = "\(workDirectory)/post.lua"
        write(file: script, "wrk.method = \"POST\"\nwrk.body = '{\"name\": \"Ada\"}'\n")
        return script
    }

    private func currentDirectory() -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let found = buffer.withUnsafeMutableBufferPointer { pointer in
            pointer.withMemoryRebound(to: CChar.self) { getcwd($0.baseAddress, $0.count) != nil }
        }
        guard found else { return "." }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The same build with `server.metrics` on (the default: metrics, kept lines) and off, inline
    /// `hello` through the Invoke API and a route: what observability costs per request.
    func observability() throws -> String {
        guard let wrk = which("wrk"), let taskset = which("taskset") else {
            return "### Observability\n\nSkipped: wrk and taskset are needed.\n"
        }
        let functions =
            #""functions": {"hello": {"handler": "Hello", "isolation": "inline", "concurrency": 1000, "#
            + #""routes": ["GET /hello/{name}"]}}"#
        let on = "\(workDirectory)/observability-on.json"
        let off = "\(workDirectory)/observability-off.json"
        write(file: on, "{\(functions)}")
        write(file: off, #"{"server": {"metrics": false}, "# + functions + "}")
        let script = postScript()
        var text = """
            ### Observability: metrics and kept lines on against off, same build, inline `hello`

            \(connections) connections, \(seconds) s per run, \(observabilityRounds) alternating rounds, pinned as above. Target: on costs ≤ 3%.

            Throughput on a shared machine moves by a few percent from one 10 s run to the next, as much as
            the cost measured; the server's own CPU time per request (`/proc/PID/stat`, all threads) does
            not depend on what else runs, and on one core it is what bounds throughput: its ratio off / on
            is the throughput that observability leaves.

            | scenario | metrics | req/s | p99 ms | CPU µs / request | on / off (req/s) | on / off (CPU) |
            |---|---|---|---|---|---|---|

            """
        for (name, path, lua) in [
            ("Invoke API", "/2015-03-31/functions/hello/invocations", Optional(script)),
            ("route `GET /hello/Ada`", "/hello/Ada", nil),
        ] {
            var results: [String: [Result]] = ["on": [], "off": []]
            for round in 0..<observabilityRounds {
                for (label, config) in round % 2 == 0 ? [("on", on), ("off", off)] : [("off", off), ("on", on)] {
                    results[label]!.append(
                        try measure(
                            server: [
                                taskset, "-c", "0", "\(binaries)/galley", "serve", "--config", config,
                                "--event-loops", "1", "--port",
                            ],
                            path: path,
                            lua: lua,
                            wrk: wrk,
                            taskset: taskset
                        )
                    )
                }
            }
            let withMetrics = median(results["on"]!)
            let without = median(results["off"]!)
            let ratio = withMetrics.requestsPerSecond / without.requestsPerSecond
            let cpuOn = results["on"]!.map(\.cpuMicroseconds).sorted()[observabilityRounds / 2]
            let cpuOff = results["off"]!.map(\.cpuMicroseconds).sorted()[observabilityRounds / 2]
            text += "| \(name) | on | \(format(withMetrics.requestsPerSecond, 0)) | \(format(withMetrics.p99)) "
            text += "| \(format(cpuOn, 2)) | **\(format(ratio, 3))x** | **\(format(cpuOff / cpuOn, 3))x** |\n"
            text +=
                "| | off | \(format(without.requestsPerSecond, 0)) | \(format(without.p99)) | \(format(cpuOff, 2)) | | |\n"
        }
        return text
    }

    func median(_ results: [Result]) -> Result {
        results.sorted { $0.requestsPerSecond < $1.requestsPerSecond }[results.count / 2]
    }

    /// Starts the server on a free port, waits for it, warms it, runs wrk, stops the server.
    /// With `warm`, waits (up to 2 minutes) until that many of the function's environments are idle.
    func measure(
        server: [String],
        path: String,
        lua: String?,
        wrk: String,
        taskset: String,
        warm: (function: String, count: Int)? = nil
    ) throws -> Result {
        let port = freePort()
        var arguments = server
        if let index = arguments.firstIndex(of: "PORT") {
            arguments[index] = String(port)
        } else {
            arguments.append(String(port))
        }
        let pid = spawnProcess(arguments[0], Array(arguments.dropFirst()))
        defer {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        guard waitUntilListening(port: port) else { fatalError("\(arguments) did not start listening") }
        if let warm, let curl = which("curl") {
            let deadline = ContinuousClock.now + .seconds(120)
            let pattern = "\"\(warm.function)\":{"
            while ContinuousClock.now < deadline {
                let document = capture(curl, ["-s", "http://127.0.0.1:\(port)/_galley/functions"])
                if let start = document.range(of: pattern)?.upperBound,
                    document[start...].prefix(while: { $0 != "}" }).contains("\"idle\":\(warm.count)")
                {
                    break
                }
                usleep(200_000)
            }
        }
        return run(
            wrk: wrk,
            taskset: taskset,
            url: "http://127.0.0.1:\(port)\(path)",
            lua: lua,
            cpuTicks: { cpuTicks(of: pid) }
        ).result
    }

    /// wrk on core 1 against `url`, after a 2 s warm-up: the result, with the server's CPU per
    /// request from `cpuTicks` (read before and after), and the CPU microseconds per request of
    /// `otherTicks` the same way.
    func run(
        wrk: String,
        taskset: String,
        url: String,
        lua: String?,
        cpuTicks: () -> Int,
        otherTicks: () -> Int = { 0 }
    ) -> (result: Result, otherMicroseconds: Double) {
        var wrkArguments = ["-c", "1", wrk, "-t1", "-c\(connections)", "--latency"]
        if let lua { wrkArguments += ["-s", lua] }
        _ = capture(taskset, wrkArguments + ["-d2s", url])  // warm-up
        let before = (cpuTicks(), otherTicks())
        let output = capture(taskset, wrkArguments + ["-d\(seconds)s", url])
        let after = (cpuTicks(), otherTicks())
        // Only 2xx answers count: a 429 is not throughput.
        let failed =
            output.split(separator: "\n").first { $0.contains("Non-2xx or 3xx responses:") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        let total = number(after: "requests in", in: output, field: 0)
        let perSecond = number(after: "Requests/sec:", in: output)
        let microseconds = { (ticks: Int) in
            total > 0 ? Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) * 1e6 / total : 0
        }
        let result = Result(
            requestsPerSecond: total > 0 ? perSecond * (total - failed) / total : 0,
            non2xx: failed,
            p50: latency("50%", in: output),
            p99: latency("99%", in: output),
            cpuMicroseconds: microseconds(after.0 - before.0)
        )
        return (result, microseconds(after.1 - before.1))
    }

    /// utime + stime of a process, all its threads, in clock ticks (`/proc/PID/stat` fields 14, 15).
    func cpuTicks(of pid: pid_t) -> Int {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return 0 }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return 0 }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        guard let close = line.lastIndex(of: ")") else { return 0 }
        let fields = line[line.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 14 is fields[11] and field 15 fields[12].
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
        return user + system
    }

    /// The last number on wrk's line holding `label`, or with `field`, that field of the line.
    func number(after label: String, in text: String, field: Int? = nil) -> Double {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }) else {
            fatalError("wrk printed no \(label):\n\(text)")
        }
        let fields = line.split(separator: " ")
        return Double((field.map { fields[$0] } ?? fields.last) ?? "") ?? 0
    }

    /// A latency percentile in milliseconds from wrk's `--latency` table.
    func latency(_ percentile: String, in text: String) -> Double {
        guard
            let line = text.split(separator: "\n").first(where: {
                $0.trimmingPrefix(while: { $0 == " " }).hasPrefix(percentile)
            }),
            let value = line.split(separator: " ").last
        else { fatalError("wrk printed no \(percentile) latency:\n\(text)") }
        let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000)]
        for (unit, scale) in units where value.hasSuffix(unit) {
            return (Double(value.dropLast(unit.count)) ?? 0) * scale
        }
        return 0
    }

    private func write(file: String, _ text: String) {
        guard let handle = fopen(file, "w") else { fatalError("cannot write \(file)") }
        fputs(text, handle)
        fclose(handle)
    }
}

/// A TCP port that was free a moment ago.
func freePort() -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls until something accepts connections on the port (at most 30 s).
func waitUntilListening(port: Int) -> Bool {
    for _ in 0..<3000 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        close(descriptor)
        if connected { return true }
        usleep(10_000)
    }
    return false
}

/// The full path of a program on PATH.
func which(_ name: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    for folder in path.split(separator: ":") where access("\(folder)/\(name)", X_OK) == 0 {
        return "\(folder)/\(name)"
    }
    return nil
}

/// Runs a program and returns its stdout.
func capture(_ path: String, _ arguments: [String]) -> String {
    var pipe: [Int32] = [0, 0]
    guard Glibc.pipe(&pipe) == 0 else { fatalError("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipe[0])
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { fatalError("cannot start \(path)") }
    close(pipe[1])
    let output = readToEnd(pipe[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return output
}

/// Reads `descriptor` until end of file, closes it, and returns what it held as text.
func readToEnd(_ descriptor: Int32) -> String {
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(descriptor, &buffer, buffer.count)
        if count <= 0 { break }
        output += buffer[..<count]
    }
    close(descriptor)
    return String(decoding: output, as: UTF8.self)
}
