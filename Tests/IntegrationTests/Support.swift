import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The built `galley` binary, beside the test bundle in the build folder.
enum Binaries {
    static let directory: URL = {
        let executable = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent()
    }()

    static let galley = directory.appending(path: "galley")
}

/// What a finished process left behind.
struct ProcessOutput {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var err: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs `galley` with `arguments`, feeding `stdin`, and waits for it (at most `timeout`).
func runGalley(
    _ arguments: [String],
    stdin: String = "",
    in directory: TemporaryDirectory? = nil,
    timeout: Duration = .seconds(60)
) async throws -> ProcessOutput {
    try await runProcess(Binaries.galley.path, arguments, stdin: stdin, in: directory?.url, timeout: timeout)
}

/// Runs any program (found on PATH unless `executable` is a path) and waits for it.
func runProcess(
    _ executable: String,
    _ arguments: [String],
    stdin: String = "",
    in directory: URL? = nil,
    environment: [String: String] = [:],
    timeout: Duration = .seconds(60)
) async throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(filePath: executable.hasPrefix("/") ? executable : try Tools.path(of: executable))
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    let input = Pipe()
    let output = Pipe()
    let error = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // Read both pipes while the process runs, so that neither fills up and blocks it.
    async let out = Blocking.run { output.fileHandleForReading.readDataToEndOfFile() }
    async let err = Blocking.run { error.fileHandleForReading.readDataToEndOfFile() }
    let writer = input.fileHandleForWriting
    let bytes = Data(stdin.utf8)
    await Blocking.run {
        try? writer.write(contentsOf: bytes)
        try? writer.close()
    }
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            Issue.record("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            break
        }
        try await Task.sleep(for: .milliseconds(5))
    }
    let stdout = await out
    let stderr = await err
    process.waitUntilExit()
    return ProcessOutput(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}

/// External programs the integration tests drive.
enum Tools {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The program's path on PATH (or in /usr/sbin, where nginx lives).
    static func path(of name: String) throws -> String {
        let folders =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + [
                "/usr/sbin", "/sbin",
            ]
        for folder in folders where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
            return "\(folder)/\(name)"
        }
        throw ToolMissing(name: name)
    }

    /// Whether a test that needs `names` should run: when they are installed, and always in CI,
    /// where a missing tool must fail the test rather than skip it.
    static func usable(_ names: String...) -> Bool {
        isCI || names.allSatisfy { (try? path(of: $0)) != nil }
    }

    static func pythonHas(_ module: String) -> Bool {
        guard let python = try? path(of: "python3") else { return false }
        let process = Process()
        process.executableURL = URL(filePath: python)
        process.arguments = ["-c", "import \(module)"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

struct ToolMissing: Error, CustomStringConvertible {
    var name: String
    var description: String { "\(name) is not installed (.ci/run installs it)" }
}

/// Invokes `function` through boto3's Lambda client at `endpoint` (unsigned, as against any
/// local Lambda); returns the status code and the decoded payload.
func boto3Invoke(
    _ endpoint: String,
    _ function: String,
    payload: String
) async throws -> (
    status: Int?, body: [String: Any]?
) {
    let script = """
        import boto3, json, sys
        from botocore import UNSIGNED
        from botocore.config import Config
        client = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                              config=Config(signature_version=UNSIGNED))
        response = client.invoke(FunctionName=sys.argv[2], Payload=sys.argv[3].encode())
        print(json.dumps({"status": response["StatusCode"], "body": json.loads(response["Payload"].read())}))
        """
    let output = try await runProcess("python3", ["-c", script, endpoint, function, payload])
    #expect(output.status == 0, "\(output.err)")
    let object = try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any]
    return (object?["status"] as? Int, object?["body"] as? [String: Any])
}
