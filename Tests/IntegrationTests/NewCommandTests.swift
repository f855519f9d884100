import Foundation
import TestSupport
import Testing

/// `galley new`: every flavour creates what it says, compiles against the real Galley module, and
/// runs; nothing is ever overwritten.
struct NewCommandTests {
    let directory: TemporaryDirectory
    let config: String

    static let repository = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    init() throws {
        directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path("Functions"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Self.repository.appending(path: "Functions/Catalog.swift").path,
            toPath: directory.path("Functions/Catalog.swift")
        )
        config = try directory.write("runtime.json", #"{"storage": {"path": "data"}, "functions": {}}"#)
    }

    func runtimeFunctions() throws -> [String: [String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(filePath: config))) as? [String: Any]
        return object?["functions"] as? [String: [String: Any]] ?? [:]
    }

    @Test(arguments: [["greeter", "--route", "GET /greet/{name}"], ["raw-echo", "--byte"]])
    func aSwiftFunctionIsCreatedWhole(arguments: [String]) async throws {
        let output = try await runGalley(["new"] + arguments + ["--config", config])
        #expect(output.status == 0, "\(output.err)")
        let type = arguments[0] == "greeter" ? "Greeter" : "RawEcho"
        let handler = directory.path("Functions/\(type)/\(type).swift")
        let test = directory.path("Tests/FunctionsTests/\(type)Tests.swift")
        #expect(FileManager.default.fileExists(atPath: directory.path("Functions/\(type)/events/sample.json")))
        let catalog = try String(contentsOfFile: directory.path("Functions/Catalog.swift"), encoding: .utf8)
        #expect(catalog.contains(".handler(\"\(type)\", \(type).self),\n]"))
        let entry = try #require(try runtimeFunctions()[arguments[0]])
        #expect(entry["handler"] as? String == type)
        if arguments.contains("--route") { #expect(entry["routes"] as? [String] == ["GET /greet/{name}"]) }
        // The handler and its test compile against the Galley module this build made.
        let testSource = try String(contentsOfFile: test, encoding: .utf8)
            .replacingOccurrences(of: "@testable import Functions\n", with: "")
        let testCopy = try directory.write("\(type)TestsCopy.swift", testSource)
        let swiftc = try await runProcess(
            "swiftc",
            [
                "-typecheck", "-swift-version", "6", "-I", Binaries.directory.appending(path: "Modules").path,
                // The C module the Galley module imports (zlib, for CloudWatch Logs events), as SwiftPM gives it.
                "-I", Self.repository.appending(path: "Sources/CZlib").path,
                "-module-name", "Functions", handler, testCopy,
            ],
            timeout: .seconds(120)
        )
        #expect(swiftc.status == 0, "\(swiftc.err)")
    }

    @Test(.enabled(if: Tools.isCI || Tools.pythonHas("awslambdaric"), "awslambdaric is not installed"))
    func aPythonFunctionRunsWithNoEdit() async throws {
        let created = try await runGalley(["new", "py-greeter", "--python", "--config", config])
        #expect(created.status == 0, "\(created.err)")
        #expect(created.out.contains("galley invoke py-greeter --event Functions/py-greeter/events/sample.json"))
        let invoked = try await runGalley(
            [
                "invoke", "py-greeter", "--event", directory.path("Functions/py-greeter/events/sample.json"),
                "--config", config,
            ]
        )
        #expect(invoked.status == 0, "\(invoked.err)")
        #expect(invoked.out == #"{"message": "Hello, Ada!"}"# + "\n")
    }

    @Test func nothingIsOverwritten() async throws {
        #expect(try await runGalley(["new", "greeter", "--config", config]).status == 0)
        let runtime = try String(contentsOfFile: config, encoding: .utf8)
        let again = try await runGalley(["new", "greeter", "--config", config])
        #expect(again.status == 2)
        #expect(again.err.contains("a function named 'greeter' exists already; nothing was written"))
        // Another name whose files exist already: refused before anything is written.
        try FileManager.default.createDirectory(
            atPath: directory.path("Functions/Other"),
            withIntermediateDirectories: true
        )
        let mine = try directory.write("Functions/Other/Other.swift", "// mine")
        let clash = try await runGalley(["new", "other", "--config", config])
        #expect(clash.status == 2)
        #expect(clash.err.contains("exists already; nothing was written"), "\(clash.err)")
        #expect(try String(contentsOfFile: mine, encoding: .utf8) == "// mine")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == runtime)
    }
}
