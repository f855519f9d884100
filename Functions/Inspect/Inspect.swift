import Galley
import Synchronization

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

/// Answers with what it received, for checking a deployment (as httpbin does for HTTP), and is
/// Galley's fault lab: `{"requestId", "functionName", "remainingTimeMs", "environment", "event"}`.
///
/// The event may steer it:
/// - `{"sleepMs": 500}` waits first, `{"log": "text"}` writes a log line, `{"print": "text"}`
///   writes text to stdout as it is, `{"printMB": N}` writes N MB of 1 KB lines, `{"printLineKB": N}`
///   one line of N KB,
///   `{"fail": "why"}` throws a `FunctionError` of type `InspectError`;
/// - `{"crash": true}` traps (`fatalError`), `{"spin": true}` loops on the CPU without ever
///   checking for cancellation, `{"allocateMB": N}` allocates and touches N MB,
///   `{"exit": N}` ends the process with status N;
/// - `{"storeGet": {"namespace": "n", "key": "k"}}` reads a key's stored JSON as text and
///   `{"storePut": {"namespace": "n", "key": "k", "value": "v"}}` writes one (the answer's `store`),
///   as far as runtime.json's `store` grants allow;
/// - `{"reach": ["/path", …]}` tries to read each file or list each folder (`{parent}` in a path
///   is the host's pid), and `{"signal": PID}`
///   to signal a process (signal 0): the answer's `reached` says what came of each, and `uid` who
///   it ran as. A tenant's probe of its sandbox.
struct Inspect: ByteHandler {
    struct StoreKey: Decodable {
        var namespace: String
        var key: String
        var value: String?
    }

    /// `{"storeLoop": {"op": "get", "count": 10000}}`: that many gets (or puts) of one key in its own
    /// namespace, for measuring what a store call costs from where the handler runs.
    struct StoreLoop: Decodable {
        var op: String
        var count: Int
    }

    struct Options: Decodable {
        var storeLoop: StoreLoop?
        var storeGet: StoreKey?
        var storePut: StoreKey?
        var sleepMs: Int?
        var fail: String?
        var log: String?
        var print: String?
        var printMB: Int?
        var printLineKB: Int?
        var crash: Bool?
        var spin: Bool?
        var allocateMB: Int?
        var exit: Int32?
        var reach: [String]?
        var signal: Int32?
    }

    /// Counts the spinning loop's turns, so that the loop has an effect and is not optimised away.
    static let spins = Atomic<Int>(0)

    /// `INSPECT_INIT` in the function's environment makes the init phase fail: `crash` traps,
    /// `exit` ends the process with status 4.
    init(context: InitContext) {
        switch context.environment["INSPECT_INIT"] {
        case "crash": fatalError("Inspect was asked to crash in its init phase")
        case "exit": Glibc.exit(4)
        default: break
        }
    }

    func handle(_ payload: Data, context: Context) async throws -> Data {
        let options = (try? JSONDecoder().decode(Options.self, from: payload)) ?? Options()
        if let line = options.log { context.logger.info("\(line)") }
        if let text = options.print {
            let bytes = Array((text + "\n").utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        }
        if let megabytes = options.printMB, megabytes > 0 {
            // 1 KB lines, written 64 KB at a time.
            let chunk = [UInt8]((0..<64).flatMap { _ in [UInt8](repeating: UInt8(ascii: "x"), count: 1023) + [10] })
            for _ in 0..<(megabytes * 16) { _ = chunk.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) } }
        }
        if let kilobytes = options.printLineKB, kilobytes > 0 {
            let line = [UInt8](repeating: UInt8(ascii: "y"), count: kilobytes * 1024) + [10]
            _ = line.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        }
        if let sleep = options.sleepMs { try await Task.sleep(for: .milliseconds(sleep)) }
        if let reason = options.fail { throw FunctionError(reason, type: "InspectError") }
        var stored: String?
        if let loop = options.storeLoop {
            let store = try context.store
            try await store.put("loop", "v")
            for _ in 0..<loop.count {
                if loop.op == "put" { try await store.put("loop", "v") } else { _ = try await store.get("loop") }
            }
            stored = "\(loop.count) \(loop.op)s"
        }
        if let get = options.storeGet {
            stored =
                try await context.store(namespace: get.namespace).get(get.key)
                .map { String(decoding: $0.value, as: UTF8.self) } ?? ""
        }
        if let put = options.storePut {
            stored = String(try await context.store(namespace: put.namespace).put(put.key, put.value ?? ""))
        }
        if options.crash == true { fatalError("Inspect was asked to crash") }
        if let status = options.exit { Glibc.exit(status) }
        if options.spin == true {
            while true { Self.spins.add(1, ordering: .relaxed) }
        }
        var touched = 0
        if let megabytes = options.allocateMB, megabytes > 0 {
            // Every byte written, so every page is resident.
            let block = [UInt8](repeating: 1, count: megabytes << 20)
            touched = block.count >> 20
            withExtendedLifetime(block) {}
        }
        let remaining = context.remainingTime.components
        let summary: [String: String] = [
            "requestId": context.requestID,
            "functionName": context.functionName,
            "invokedFunctionArn": context.invokedFunctionARN,
            "traceId": context.traceID,
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var object = try encoder.encode(summary).dropLast()
        object.append(
            contentsOf:
                #","remainingTimeMs":\#(remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000)"#.utf8
        )
        if touched > 0 { object.append(contentsOf: #","allocatedMB":\#(touched)"#.utf8) }
        if let stored { object.append(contentsOf: #","store":"#.utf8 + (try encoder.encode(stored))) }
        if options.reach != nil || options.signal != nil {
            var reached: [String: String] = [:]
            for path in options.reach ?? [] {
                reached[path] = Self.reach(path.replacing("{parent}", with: String(getppid())))
            }
            if let pid = options.signal {
                reached["signal \(pid)"] = kill(pid, 0) == 0 ? "ok" : "error: \(String(cString: strerror(errno)))"
            }
            object.append(contentsOf: #","uid":\#(getuid()),"reached":"#.utf8 + (try encoder.encode(reached)))
        }
        object.append(contentsOf: #","environment":"#.utf8)
        object.append(try encoder.encode(context.environment))
        object.append(contentsOf: #","event":"#.utf8)
        object.append(payload)
        object.append(UInt8(ascii: "}"))
        return Data(object)
    }

    /// `ok: N bytes` of a file or `ok: N entries` of a folder, or the error that stopped it.
    static func reach(_ path: String) -> String {
        if let folder = opendir(path) {
            defer { closedir(folder) }
            var entries = 0
            while let entry = readdir(folder) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { entries += 1 }
            }
            return "ok: \(entries) entries"
        }
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return "error: \(String(cString: strerror(errno)))" }
        defer { close(descriptor) }
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 { return "error: \(String(cString: strerror(errno)))" }
            if count == 0 { break }
            total += count
        }
        return "ok: \(total) bytes"
    }
}
