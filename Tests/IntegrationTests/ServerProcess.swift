import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The hosts the test process started and has not seen end.
private let running = Mutex<Set<pid_t>>([])
private let killsAtExit = Atomic<Bool>(false)

/// A running `galley serve`, on port 0 or a Unix socket, with its stderr collected.
final class ServerProcess: Sendable {
    /// Bytes appended by a reader thread.
    final class Buffer: Sendable {
        private let data = Mutex(Data())
        /// Past this many bytes the rest is read and dropped (for hosts that log hundreds of MB).
        let limit: Int
        init(limit: Int = .max) { self.limit = limit }
        func append(_ chunk: Data) { data.withLock { if $0.count < limit { $0.append(chunk) } } }
        var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    }

    let process: Process
    private let log: Buffer
    /// `http://127.0.0.1:PORT`, or `unix:PATH`.
    let address: String

    /// `environment` is added to the test process's own.
    init(
        config: String,
        arguments: [String] = ["--port", "0"],
        environment: [String: String] = [:],
        logLimit: Int = .max,
        executable: URL = Binaries.galley,
        timeout: Duration = .seconds(30)
    ) async throws {
        log = Buffer(limit: logLimit)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve", "--config", config] + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let error = Pipe()
        process.standardError = error
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        ServerProcess.started(process.processIdentifier)
        self.process = process
        let log = self.log
        Thread.detachNewThread {
            let reader = error.fileHandleForReading
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { return }
                log.append(chunk)
            }
        }
        // Wait for the line that says where it listens.
        let deadline = ContinuousClock.now + timeout
        var found: String?
        while found == nil {
            let text = log.text
            if let match = text.firstMatch(of: /listening on (http:\/\/[0-9.]+:\d+|unix:\S+)/) {
                found = String(match.1)
            }
            guard found == nil else { break }
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.terminate()
                throw ServerFailed(log: text)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        address = found!
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        running.withLock { _ = $0.remove(process.processIdentifier) }
    }

    /// Records a host that the test process must not leave behind: a test that ends without
    /// stopping its host (or whose object outlives the run) has it killed when the run exits.
    private static func started(_ pid: pid_t) {
        running.withLock { _ = $0.insert(pid) }
        guard !killsAtExit.exchange(true, ordering: .relaxed) else { return }
        atexit {
            // Only processes still this one's children: a pid that was reaped may be another's now.
            let left = running.withLock { $0 }.filter { ServerProcess.parent(of: $0) == getpid() }
            // SIGTERM first, so that a `--watch` supervisor takes its hosts with it.
            for pid in left { kill(pid, SIGTERM) }
            if !left.isEmpty { usleep(500_000) }
            for pid in left { kill(pid, SIGKILL) }
        }
    }

    /// The parent of `pid` (field 4 of `/proc/PID/stat`), or `nil` when it is gone.
    private static func parent(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    var stderr: String { log.text }

    /// The TCP port of `http://127.0.0.1:PORT`; `nil` on a Unix socket.
    var port: Int? { address.hasPrefix("http:") ? address.split(separator: ":").last.flatMap { Int($0) } : nil }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit; returns its status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                Issue.record("galley serve did not exit within \(timeout)")
                return -1
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// Polls until `condition` holds on the collected stderr.
    func waitForLog(timeout: Duration = .seconds(10), _ condition: (String) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(stderr) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

struct ServerFailed: Error, CustomStringConvertible {
    var log: String
    var description: String { "galley serve did not start:\n\(log)" }
}

/// curl, the way a user would call a route.
func curl(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> ProcessOutput {
    try await runProcess("curl", ["--silent", "--show-error", "--max-time", "20"] + arguments, timeout: timeout)
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picked, listening when `listening`;
/// the caller closes it.
func loopbackSocket(listening: Bool) throws -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && (!listening || listen(descriptor, 1) == 0)
                && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else {
        close(descriptor)
        throw POSIXError(.EADDRINUSE)
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP port that was free a moment ago, for programs that cannot bind port 0 and report it (nginx).
func freePort() throws -> Int {
    let (descriptor, port) = try loopbackSocket(listening: false)
    close(descriptor)
    return port
}
