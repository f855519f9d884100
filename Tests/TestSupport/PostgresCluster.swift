import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throw-away PostgreSQL cluster for one test run: `initdb` into a temporary folder, `postgres`
/// on a free loopback port (as `nobody` when the tests run as root, since PostgreSQL refuses
/// root), stopped and removed when the test process exits. Each test takes a database of its own.
public final class PostgresCluster: Sendable {
    public let port: Int
    public let folder: URL
    let server: Process

    /// The run's cluster, started on first use; the error says why there is none.
    public static let shared: Result<PostgresCluster, ClusterError> = Result { try PostgresCluster() }
        .mapError { $0 as? ClusterError ?? ClusterError(message: "\($0)") }

    /// Whether PostgreSQL tests should run: always in CI (where a missing server must fail them),
    /// elsewhere when PostgreSQL's programs are installed.
    public static var isWanted: Bool {
        ProcessInfo.processInfo.environment["CI"] == "true" || program("initdb") != nil
    }

    public struct ClusterError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A new, empty database; its URL.
    public func makeDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try Self.run(
            Self.program("psql") ?? "psql",
            [
                "-h", "127.0.0.1", "-p", String(port), "-U", "galley", "-d", "postgres", "-q", "-c",
                "CREATE DATABASE \(name)",
            ],
            asOwner: false
        )
        return url(database: name)
    }

    public func url(database: String) -> String { "postgres://galley@127.0.0.1:\(port)/\(database)" }

    /// Stops the server at once (as a machine failure would), or starts it again on the same port.
    public func stop() throws {
        try Self.run(
            Self.program("pg_ctl")!,
            ["-D", folder.appending(path: "data").path, "-m", "immediate", "-w", "stop"]
        )
    }

    public func start() throws {
        try Self.run(
            Self.program("pg_ctl")!,
            [
                "-D", folder.appending(path: "data").path, "-l", folder.appending(path: "restart.log").path, "-w",
                "-o", "-p \(port) -k \(folder.path) -c listen_addresses=127.0.0.1", "start",
            ]
        )
    }

    private init() throws {
        guard let initdb = Self.program("initdb"), let postgres = Self.program("postgres"),
            Self.program("pg_ctl") != nil
        else {
            throw ClusterError(
                message: "PostgreSQL is not installed (initdb, postgres, pg_ctl); apt-get install postgresql"
            )
        }
        folder = URL(filePath: "/tmp/galley-postgres-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if geteuid() == 0 { chown(folder.path, 65534, 65534) }
        let data = folder.appending(path: "data").path
        try Self.run(initdb, ["-D", data, "-U", "galley", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        var lastError = ""
        for _ in 0..<5 {
            let port = Self.freePort()
            let process = Process()
            process.executableURL = URL(filePath: postgres)
            process.arguments = [
                "-D", data, "-p", String(port), "-k", folder.path, "-c", "listen_addresses=127.0.0.1",
                "-c", "max_connections=300", "-c", "shared_buffers=32MB",
            ]
            Self.dropRoot(process)
            let log = folder.appending(path: "postgres-\(port).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            if geteuid() == 0 { chown(log.path, 65534, 65534) }
            process.standardError = try FileHandle(forWritingTo: log)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning, Date() < deadline {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                if text.contains("ready to accept connections") {
                    self.port = port
                    self.server = process
                    let pid = process.processIdentifier
                    let path = folder.path
                    Self.cleanup.append((pid, path))
                    atexit {
                        for (pid, path) in PostgresCluster.cleanup.entries {
                            kill(pid, SIGQUIT)
                            var status: Int32 = 0
                            waitpid(pid, &status, 0)
                            try? FileManager.default.removeItem(atPath: path)
                        }
                    }
                    return
                }
                usleep(20_000)
            }
            lastError = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if process.isRunning { process.terminate() }
        }
        throw ClusterError(message: "postgres did not start: \(lastError)")
    }

    /// Servers to stop when the process exits.
    final class Cleanup: @unchecked Sendable {
        private var list: [(pid_t, String)] = []
        private let lock = NSLock()
        func append(_ entry: (pid_t, String)) { lock.withLock { list.append(entry) } }
        var entries: [(pid_t, String)] { lock.withLock { list } }
    }
    static let cleanup = Cleanup()

    static func program(_ name: String) -> String? {
        let folders =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
            .map { "/usr/lib/postgresql/\($0)/bin" }
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// As root, the server's programs run as `nobody`.
    static func dropRoot(_ process: Process) {
        guard geteuid() == 0, let executable = process.executableURL?.path else { return }
        process.arguments =
            ["--reuid=65534", "--regid=65534", "--clear-groups", executable] + (process.arguments ?? [])
        process.executableURL = URL(filePath: "/usr/bin/setpriv")
    }

    static func run(_ executable: String, _ arguments: [String], asOwner: Bool = true) throws {
        let process = Process()
        process.executableURL = URL(filePath: executable)
        process.arguments = arguments
        if asOwner { dropRoot(process) }
        process.currentDirectoryURL = URL(filePath: "/tmp")
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClusterError(
                message:
                    "\(URL(filePath: executable).lastPathComponent) failed: \(String(decoding: text, as: UTF8.self))"
            )
        }
    }

    /// A loopback port nobody listens on now.
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
