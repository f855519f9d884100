import Logging
import NIOCore
import NIOPosix
import Synchronization
import UnixSignals

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `galley serve --watch`: serves the package's functions and rebuilds them as their sources change,
/// with no request failing or waiting longer than a cold start during a swap.
///
/// The supervisor holds the public address (a ``FrontProxy``) and the storage folder's lock; each
/// build runs as a host generation of its own (`galley serve --supervised` on a private Unix
/// socket). On a change under `Sources/`, `Functions/` or to `Package.swift` it runs `swift build`
/// (debounced); when that succeeds it starts the next generation from the new binary, sends new
/// requests to it once it listens, and stops the old one, which finishes what it runs (SIGTERM). A
/// failed build prints the compiler's errors and the old generation keeps serving. A change under a
/// `command` function's `directory` starts a new generation from the same binary; a change to
/// runtime.json is a SIGHUP to the current one.
public final class WatchSupervisor: Sendable {
    private let options: HostOptions
    private let address: ListenAddress
    private let packageRoot: String
    private let configurationFile: String
    private let storageFolder: String
    private let commandFolders: [String]
    private let logger: Logger
    private let release: Bool
    private let state = Mutex(State())
    private let lock: StorageLock

    private struct State {
        var generation = 0
        var current: Generation?
        var pending: Set<String> = []
        var lastChange = ContinuousClock.now
    }

    /// One running host.
    private struct Generation: Sendable {
        var number: Int
        var process: ChildProcess
        var socketPath: String
        var binary: String?
    }

    /// Changes are acted on once none has come for this long.
    static let quiet: Duration = .milliseconds(300)

    /// Reads runtime.json once: for the address (`--socket`, `--host`/`--port` over its `server`),
    /// the storage folder and the `command` folders to watch.
    public init(options: HostOptions) throws(ConfigurationError) {
        let file = Sandbox.absolute(options.configurationFile)
        let configuration = try RuntimeConfiguration.load(from: file)
        let folder = FileWatcher.parent(file)
        var root = folder
        while access(root + "/Package.swift", F_OK) != 0 {
            guard root != "/" && !root.isEmpty else {
                throw ConfigurationError(
                    file: file,
                    path: "",
                    message:
                        "serve --watch rebuilds the Swift package runtime.json is in, and there is no Package.swift in \(folder) or above it"
                )
            }
            root = FileWatcher.parent(root)
        }
        let queueFile = EventQueue.file(configuration, configurationFile: file)
        storageFolder = FileWatcher.parent(queueFile)
        do {
            lock = try StorageLock(folder: storageFolder)
        } catch {
            throw ConfigurationError(file: file, path: "storage.path", message: error.message)
        }
        self.options = options
        self.address = FunctionHost.listenAddress(options, server: configuration.server)
        self.packageRoot = root
        self.configurationFile = file
        self.commandFolders = configuration.functions.values.compactMap { function in
            guard function.command != nil, let directory = function.directory else { return nil }
            return Sandbox.absolute(directory.hasPrefix("/") ? directory : folder + "/" + directory)
        }
        self.release = EnvironmentLauncher.currentExecutable.contains("/release/")
        let writer = LogWriter.standardError(format: options.logFormat)
        var logger = Logger(label: "galley") { _ in
            InvocationLogHandler(
                log: InvocationLog(writer: writer, requestID: nil, capture: false),
                logLevel: options.logLevel
            )
        }
        logger.logLevel = options.logLevel
        self.logger = logger
    }

    /// Serves until SIGTERM or SIGINT, then stops every generation (each finishes its requests).
    public func run(onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let proxy = FrontProxy(group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let listener: any Channel
        do {
            listener = try await proxy.listen(on: address)
        } catch {
            throw ListenError(error, address: address) ?? error
        }
        if let mode = options.socketMode, case .socket(let path) = address { _ = chmod(path, mode_t(mode)) }
        // The first generation is this very binary: what `galley serve` started with.
        guard let first = await startGeneration(binary: "/proc/\(getpid())/exe", copy: nil, recovers: true) else {
            listener.close(promise: nil)
            throw WatchError("the first host did not start; its log is above")
        }
        state.withLock { $0.current = first }
        proxy.current = FrontProxy.Backend(generation: first.number, socketPath: first.socketPath)
        let watcher: FileWatcher
        do {
            watcher = try FileWatcher(
                folders: [packageRoot + "/Sources", packageRoot + "/Functions"] + commandFolders,
                files: [packageRoot + "/Package.swift", configurationFile]
            )
        } catch {
            throw ConfigurationError(file: configurationFile, path: "", message: error.description)
        }
        let shown: String =
            switch listener.localAddress {
            case .unixDomainSocket: "unix:\(listener.localAddress?.pathname ?? "")"
            case let local?:
                "http://\(local.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""):\(local.port ?? 0)"
            case nil: "\(address)"
            }
        logger.notice(
            "watching \(packageRoot)/Sources, Functions, Package.swift and \(configurationFile); build 1 is the binary this command started from"
        )
        logger.notice("listening on \(shown)")
        onListening(shown)
        watcher.start { [self] path in
            state.withLock {
                $0.pending.insert(path)
                $0.lastChange = .now
            }
        }
        let loop = Task { await actOnChanges(proxy: proxy) }
        for await signal in signals {
            if signal == .sighup {
                signalCurrent(SIGHUP)
                continue
            }
            break
        }
        loop.cancel()
        try? await listener.close()
        let current = state.withLock { $0.current }
        if let current {
            current.process.kill(SIGTERM)
            _ = await current.process.waitForExit()
            remove(current)
        }
        await ChildProcess.killAll()
        logger.notice("stopped")
    }

    // MARK: Acting on changes

    private enum Action: Comparable {
        case reload
        case swap
        case build
    }

    /// Every 100 ms: once changes have been quiet for ``quiet``, the strongest action they need.
    private func actOnChanges(proxy: FrontProxy) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            let paths: Set<String> = state.withLock { state in
                guard !state.pending.isEmpty, ContinuousClock.now - state.lastChange >= Self.quiet else { return [] }
                defer { state.pending = [] }
                return state.pending
            }
            guard let action = paths.compactMap(classify).max() else { continue }
            let names = paths.filter { classify($0) != nil }.sorted().prefix(3).map {
                $0.hasPrefix(packageRoot + "/") ? String($0.dropFirst(packageRoot.count + 1)) : $0
            }
            switch action {
            case .reload:
                logger.notice("watch: \(names.joined(separator: ", ")) changed: reloading it (SIGHUP)")
                signalCurrent(SIGHUP)
            case .swap:
                logger.notice("watch: \(names.joined(separator: ", ")) changed: starting a new host")
                let binary = state.withLock { $0.current?.binary } ?? "/proc/\(getpid())/exe"
                await swap(to: binary, copy: nil, proxy: proxy)
            case .build:
                logger.notice("watch: \(names.joined(separator: ", ")) changed: building")
                guard let built = await build() else { continue }
                await swap(to: built, copy: built, proxy: proxy)
            }
        }
    }

    private func classify(_ path: String) -> Action? {
        if path == configurationFile { return .reload }
        if commandFolders.contains(where: { path.hasPrefix($0 + "/") }) { return .swap }
        if path.hasSuffix(".swift") { return .build }
        return nil
    }

    private func signalCurrent(_ signal: Int32) {
        state.withLock { $0.current }?.process.kill(signal)
    }

    /// Runs `swift build --product galley`; returns a copy of the new binary, or `nil` after
    /// printing why the build failed.
    private func build() async -> String? {
        let started = ContinuousClock.now
        var arguments = ["swift", "build", "--product", "galley"]
        if release { arguments += ["-c", "release"] }
        let output: String
        let termination: ChildProcess.Termination
        do {
            (output, termination) = try await Self.capture(arguments, in: packageRoot)
        } catch {
            logger.error("watch: cannot run swift build: \(error)")
            return nil
        }
        guard termination.exitStatus == 0 else {
            let current = state.withLock { $0.current?.number } ?? 0
            var seen: Set<Substring> = []
            let errors = output.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                // SwiftPM repeats each error (once from emitting the module, once from compiling).
                seen.insert(line).inserted && !line.hasPrefix("[") && !line.hasPrefix("Building")
                    && !line.hasPrefix("Planning")
                    && !line.hasPrefix("Write ") && !line.contains("unhandled; explicitly declare them")
                    && !line.allSatisfy(\.isWhitespace)
            }
            logger.error(
                "watch: the build failed (\(termination)); build \(current) keeps serving. The compiler said:\n\(errors.joined(separator: "\n"))"
            )
            return nil
        }
        let built = packageRoot + "/.build/" + (release ? "release" : "debug") + "/galley"
        let number = state.withLock { $0.generation } + 1
        let copy = storageFolder + "/builds/galley-\(number)"
        _ = mkdir(storageFolder + "/builds", 0o755)
        guard Self.copyFile(built, to: copy) else {
            logger.error("watch: cannot copy \(built) to \(copy): \(String(cString: strerror(errno)))")
            return nil
        }
        logger.notice(
            "watch: built in \(Milliseconds.twoDecimals(Milliseconds.of(ContinuousClock.now - started) / 1000)) s"
        )
        return copy
    }

    /// Starts the next generation from `binary`, and once it listens, sends new requests to it and
    /// stops the previous one (which finishes what it runs).
    private func swap(to binary: String, copy: String?, proxy: FrontProxy) async {
        guard let next = await startGeneration(binary: binary, copy: copy, recovers: false) else {
            if let copy { unlink(copy) }
            let current = state.withLock { $0.current?.number } ?? 0
            logger.error("watch: the new host did not start; build \(current) keeps serving")
            return
        }
        let previous = state.withLock { state in
            defer { state.current = next }
            return state.current
        }
        proxy.current = FrontProxy.Backend(generation: next.number, socketPath: next.socketPath)
        logger.notice(
            "watch: build \(next.number) is serving; build \(previous?.number ?? 0) finishes its requests and stops"
        )
        guard let previous else { return }
        previous.process.kill(SIGTERM)
        Task {
            _ = await previous.process.waitForExit()
            remove(previous)
        }
    }

    /// Removes a stopped generation's socket, and its binary unless the current one runs it too.
    private func remove(_ generation: Generation) {
        unlink(generation.socketPath)
        guard let binary = generation.binary, binary.hasPrefix(storageFolder + "/builds/") else { return }
        if state.withLock({ $0.current?.binary }) != binary { unlink(binary) }
    }

    /// Starts `galley serve --supervised` from `binary` on a private socket; returns it once it
    /// accepts connections, or `nil` when it exits first or does not within a minute.
    private func startGeneration(binary: String, copy: String?, recovers: Bool) async -> Generation? {
        let number = state.withLock { state in
            state.generation += 1
            return state.generation
        }
        let socketPath = "/tmp/galley-watch-\(getpid())-\(number).sock"
        unlink(socketPath)
        var arguments = [
            binary, "serve", "--config", configurationFile, "--socket", socketPath, "--socket-mode", "600",
            "--supervised", "--build", String(number),
            "--log-format", options.logFormat == .json ? "json" : "text",
            "--log-level", InvocationLogHandler.levelName(options.logLevel).lowercased(),
        ]
        if !recovers { arguments.append("--no-recovery") }
        if let overrides = options.environmentOverrides { arguments += ["--env-vars", overrides] }
        if let overrides = options.parameterOverrides { arguments += ["--parameter-overrides", overrides] }
        if let loops = options.eventLoops { arguments += ["--event-loops", String(loops)] }
        let process: ChildProcess
        do {
            process = try ChildProcess(
                arguments: arguments,
                environment: ProcessInfo.processInfo.environment,
                directory: nil
            )
        } catch {
            logger.error("watch: cannot start build \(number): \(error)")
            return nil
        }
        Self.forward(process.output)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if process.exited != nil { return nil }
            if Self.accepts(socketPath) {
                return Generation(number: number, process: process, socketPath: socketPath, binary: copy ?? binary)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        process.kill(SIGKILL)
        return nil
    }

    // MARK: Small system helpers

    /// Whether something accepts connections on the Unix socket at `path`.
    private static func accepts(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// Calls `body` with each chunk read from `descriptor` until its end, then closes it.
    private static func readChunks(_ descriptor: Int32, _ body: (ArraySlice<UInt8>) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            body(buffer[..<count])
        }
        close(descriptor)
    }

    /// Copies a child's output to this process's stderr as it comes, from a thread of its own.
    private static func forward(_ descriptor: Int32) {
        BlockingThread {
            readChunks(descriptor) { chunk in
                var offset = chunk.startIndex
                while offset < chunk.endIndex {
                    let written = chunk[offset...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                    guard written > 0 else { break }
                    offset += written
                }
            }
        }.start()
    }

    /// Runs `arguments` in `folder` and returns what it printed and how it ended.
    private static func capture(
        _ arguments: [String],
        in folder: String
    ) async throws -> (String, ChildProcess.Termination) {
        let process = try ChildProcess(
            arguments: arguments,
            environment: ProcessInfo.processInfo.environment,
            directory: folder
        )
        let descriptor = process.output
        let output = await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8], Never>) in
            BlockingThread {
                var bytes: [UInt8] = []
                readChunks(descriptor) { bytes += $0 }
                continuation.resume(returning: bytes)
            }.start()
        }
        let termination = await process.waitForExit()
        return (String(decoding: output, as: UTF8.self), termination)
    }

    private static func copyFile(_ source: String, to destination: String) -> Bool {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard output >= 0 else { return false }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return false }
            if count == 0 { return true }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                guard written > 0 else { return false }
                offset += written
            }
        }
    }
}
