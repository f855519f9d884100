import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// `galley serve --watch` on a copy of this package: real builds, real swaps, wrk all along.
@Suite(.serialized)
struct WatchTests {
    /// This repository: the package the copy is made of.
    static let repository = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// wrk's totals over every run of the load loop.
    struct Load: Sendable {
        var requests = 0
        var non2xx = 0
        var socketErrors = 0
        var runs = 0
    }

    /// Copies what `swift build` needs (no `.build`, no hidden folders) into `folder`.
    static func copyPackage(to folder: URL) throws {
        let manager = FileManager.default
        for item in ["Package.swift", "Sources", "Functions", "Tests"] {
            try manager.copyItem(at: repository.appending(path: item), to: folder.appending(path: item))
        }
        let caches = manager.enumerator(at: folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL }
            .filter { $0.lastPathComponent == "__pycache__" || $0.lastPathComponent == ".build" }
        for cache in caches ?? [] { try? manager.removeItem(at: cache) }
    }

    /// The greeting line of the copy's `Hello` handler, rewritten.
    static func setGreeting(_ text: String, in handler: URL) throws {
        let source = try String(contentsOf: handler, encoding: .utf8)
        let line = try #require(source.split(separator: "\n").first { $0.contains("return Output(message:") })
        let changed = source.replacingOccurrences(
            of: String(line),
            with: #"        return Output(message: "\#(text), \(name)!")"#
        )
        try Data(changed.utf8).write(to: handler)
    }

    @Test(
        .enabled(if: Tools.usable("wrk", "swift"), "wrk or swift is not installed"),
        .timeLimit(.minutes(30))
    )
    func swapsThreeBuildsUnderLoadWithNoFailedRequestAndSurvivesABrokenOne() async throws {
        let directory = try TemporaryDirectory(prefix: "galley-watch")
        try Self.copyPackage(to: directory.url)
        let config = try directory.write(
            "runtime.json",
            #"{"storage": {"path": "data"}, "functions": {"hello": {"handler": "Hello", "routes": ["GET /hello/{name}"]}}}"#
        )
        let handler = directory.url.appending(path: "Functions/Hello/Hello.swift")
        // The first build of the copy compiles every dependency: minutes on a loaded machine.
        let server = try await ServerProcess(config: config, arguments: ["--watch", "--port", "0"])
        let url = "\(server.address)/hello/Ada"
        #expect(try await Self.get(url) == #"{"message":"Hello, Ada!"}"#)

        // wrk in back-to-back 2 s runs for as long as the swaps take, its totals summed.
        let load = Mutex(Load())
        let running = Atomic<Bool>(true)
        let wrk = try Tools.path(of: "wrk")
        let loader = Task {
            while running.load(ordering: .relaxed) {
                let run = try await runProcess(
                    wrk,
                    ["-t1", "-c8", "-d2s", "--timeout", "30s", url],
                    timeout: .seconds(60)
                )
                let text = run.out
                load.withLock { totals in
                    totals.runs += 1
                    totals.requests += Self.number(after: " requests in", in: text, before: true)
                    totals.non2xx += Self.number(after: "Non-2xx or 3xx responses:", in: text)
                    if let line = text.split(separator: "\n").first(where: { $0.contains("Socket errors:") }) {
                        totals.socketErrors += line.split(separator: " ").compactMap { Int($0.filter(\.isNumber)) }
                            .reduce(0, +)
                    }
                }
            }
        }

        for version in 1...3 {
            try Self.setGreeting("Hello v\(version)", in: handler)
            let expected = #"{"message":"Hello v\#(version), Ada!"}"#
            let deadline = ContinuousClock.now + .seconds(version == 1 ? 1500 : 600)
            var answer = ""
            while answer != expected && ContinuousClock.now < deadline && server.process.isRunning {
                answer = (try? await Self.get(url)) ?? ""
                if answer != expected { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(answer == expected, "build \(version + 1) never answered; log:\n\(server.stderr.suffix(3000))")
        }
        let document = try await Self.get("\(server.address)/_galley/functions")
        #expect(document.contains(#""build":"4""#), "\(document)")

        // A change that does not compile: the compiler's error is printed, build 4 keeps answering.
        try Data("struct Hello: Handler { this does not compile }\n".utf8).write(to: handler)
        let deadline = ContinuousClock.now + .seconds(600)
        while !server.stderr.contains("the build failed") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(server.stderr.contains("the build failed"))
        #expect(
            server.stderr.contains("Hello.swift") && server.stderr.contains("error:"),
            "\(server.stderr.suffix(3000))"
        )
        #expect(try await Self.get(url) == #"{"message":"Hello v3, Ada!"}"#)

        running.store(false, ordering: .relaxed)
        try await loader.value
        let totals = load.withLock { $0 }
        #expect(totals.runs > 0 && totals.requests > 0)
        #expect(totals.non2xx == 0, "\(totals)")
        #expect(totals.socketErrors == 0, "\(totals)")

        server.process.terminate()
        let stopped = ContinuousClock.now + .seconds(60)
        while server.process.isRunning && ContinuousClock.now < stopped { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!server.process.isRunning)
        #expect(server.process.terminationStatus == 0)
    }

    @Test(.enabled(if: Tools.isCI || Tools.pythonHas("awslambdaric"), "awslambdaric is not installed"))
    func aCommandFunctionRestartsWhenItsFolderChangesWithNoBuild() async throws {
        let directory = try TemporaryDirectory(prefix: "galley-watch")
        try Self.copyPackage(to: directory.url)
        let config = try directory.write(
            "runtime.json",
            #"{"storage": {"path": "data"}, "functions": {"py": {"command": ["python3", "-m", "awslambdaric", "app.handler"], "directory": "Functions/py-echo", "routes": ["GET /py"]}}}"#
        )
        let server = try await ServerProcess(config: config, arguments: ["--watch", "--port", "0"])
        let url = "\(server.address)/py"
        #expect(try await Self.get(url).contains(#""greeting":"#))
        let handler = directory.url.appending(path: "Functions/py-echo/app.py")
        let source = try String(contentsOf: handler, encoding: .utf8)
        try Data(source.replacingOccurrences(of: #""greeting":"#, with: #""greeting_v2":"#).utf8).write(to: handler)
        let deadline = ContinuousClock.now + .seconds(120)
        var answer = ""
        while !answer.contains(#""greeting_v2":"#) && ContinuousClock.now < deadline {
            answer = (try? await Self.get(url)) ?? ""
            if !answer.contains(#""greeting_v2":"#) { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answer.contains(#""greeting_v2":"#), "\(server.stderr.suffix(2000))")
        #expect(try await Self.get("\(server.address)/_galley/functions").contains(#""build":"2""#))
        // No build ran for it: only the Swift sources call for one.
        #expect(!server.stderr.contains("changed: building"))
        server.process.terminate()
    }

    /// The number after (or, with `before`, before) `marker` on the line that holds it, or 0.
    static func number(after marker: String, in text: String, before: Bool = false) -> Int {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) else { return 0 }
        let parts = line.components(separatedBy: marker)
        let side = before ? parts.first ?? "" : parts.last ?? ""
        let words = side.split(separator: " ")
        return (before ? words.last : words.first).flatMap { Int($0) } ?? 0
    }

    static func get(_ url: String) async throws -> String {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 30
        let (data, _) = try await URLSession.shared.data(for: request)
        return String(decoding: data, as: UTF8.self)
    }
}
