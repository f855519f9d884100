import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throw-away PostgreSQL cluster for one test run: `initdb` into a temporary folder, `postgres`
/// on a free loopback port (as `nobody` when the tests run as root, since PostgreSQL refuses
/// root), stopped and removed when the test process exits. Each test takes a database of its own.
public final class PostgresCluster: Sendable {
    public let port: Int
    public let folder: URL
    /// The running server's process, when it runs.
    private let server = Mutex<Process?>(nil)

    /// The run's cluster, started on first use; the error says why there is none.
    public static let shared: Result<PostgresCluster, ClusterError> = Result { try PostgresCluster() }
        .mapError { $0 as? ClusterError ?? ClusterError(message: "\($0)") }

    /// A cluster of the caller's own, for a test that stops and starts its server.
    public static func makePrivate() throws -> PostgresCluster {
        try PostgresCluster()
    }

    /// A new, empty database on the run's cluster; its URL. Made off Swift's cooperative pool:
    /// `initdb` and starting `postgres` take seconds (many on a loaded machine), and a test that
    /// waited for them on one of the pool's threads (two on 2 cores, and every test that asks at
    /// once waits) would hold back every other test's tasks as long, past the deadlines some of
    /// them check.
    public static func database() async throws -> String {
        try await Blocking.run { try shared.get().makeDatabase() }
    }

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

    /// Stops the server at once, as a machine failure would (SIGQUIT: no shutdown checkpoint).
    public func stop() throws {
        guard let process = server.withLock({ $0 }) else { return }
        kill(process.processIdentifier, SIGQUIT)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { throw ClusterError(message: "postgres did not stop") }
        server.withLock { $0 = nil }
    }

    /// Starts the stopped server again, on the same port.
    public func start() throws {
        let process = try Self.startServer(folder: folder, port: port)
        server.withLock { $0 = process }
    }

    private init() throws {
        guard let initdb = Self.program("initdb"), Self.program("postgres") != nil else {
            throw ClusterError(message: "PostgreSQL is not installed (initdb, postgres); apt-get install postgresql")
        }
        folder = URL(filePath: "/tmp/galley-postgres-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if geteuid() == 0 { chown(folder.path, 65534, 65534) }
        let data = folder.appending(path: "data").path
        try Self.run(initdb, ["-D", data, "-U", "galley", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        var lastError = ""
        for _ in 0..<5 {
            let port = Self.freePort()
            do {
                let process = try Self.startServer(folder: folder, port: port)
                self.port = port
                server.withLock { $0 = process }
                Self.cleanup.append(self)
                atexit {
                    for cluster in PostgresCluster.cleanup.entries {
                        if let process = cluster.server.withLock({ $0 }) {
                            kill(process.processIdentifier, SIGQUIT)
                            process.waitUntilExit()
                        }
                        try? FileManager.default.removeItem(at: cluster.folder)
                    }
                }
                return
            } catch {
                lastError = "\(error)"
            }
        }
        throw ClusterError(message: "postgres did not start: \(lastError)")
    }

    /// Starts `postgres` on `port` and returns once it accepts connections.
    private static func startServer(folder: URL, port: Int) throws -> Process {
        guard let postgres = program("postgres") else { throw ClusterError(message: "postgres is not installed") }
        let process = Process()
        process.executableURL = URL(filePath: postgres)
        process.arguments = [
            "-D", folder.appending(path: "data").path, "-p", String(port), "-k", folder.path,
            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "shared_buffers=32MB",
        ]
        dropRoot(process)
        let log = folder.appending(path: "postgres-\(port)-\(UUID().uuidString.prefix(4)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        if geteuid() == 0 { chown(log.path, 65534, 65534) }
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning, Date() < deadline {
            if ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("ready to accept connections") {
                return process
            }
            usleep(20_000)
        }
        if process.isRunning { process.terminate() }
        throw ClusterError(message: (try? String(contentsOf: log, encoding: .utf8)) ?? "no log")
    }

    /// Clusters to stop when the process exits.
    final class Cleanup: @unchecked Sendable {
        private var list: [PostgresCluster] = []
        private let lock = NSLock()
        func append(_ entry: PostgresCluster) { lock.withLock { list.append(entry) } }
        var entries: [PostgresCluster] { lock.withLock { list } }
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
        // A file, not a pipe: what these programs leave running must not hold the test waiting.
        let errors = URL(filePath: "/tmp/galley-postgres-\(getpid())-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        if geteuid() == 0 { chown(errors.path, 65534, 65534) }
        defer { try? FileManager.default.removeItem(at: errors) }
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw ClusterError(message: "\(URL(filePath: executable).lastPathComponent) failed: \(text)")
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
