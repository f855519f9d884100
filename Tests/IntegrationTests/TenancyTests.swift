import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A function that means harm reaches nothing of the host's or of another function's: each one
/// probes its sandbox from inside, with a control it must reach (its own folder).
@Suite(.serialized)
struct TenancyTests {
    let directory: TemporaryDirectory
    let config: String
    static let secret = "tenancy-secret-\(UUID().uuidString)"

    init() throws {
        directory = try TemporaryDirectory()
        for folder in ["snoop", "other", "py-a", "py-b"] {
            try FileManager.default.createDirectory(
                at: directory.url.appending(path: folder),
                withIntermediateDirectories: true
            )
        }
        try directory.write("snoop/own.txt", "the snoop's own file")
        try directory.write("other/secret.txt", Self.secret)
        for folder in ["py-a", "py-b"] { try directory.write("\(folder)/probe.py", Self.probe) }
        config = try directory.write(
            "runtime.json",
            """
            {
              "storage": { "path": "data" },
              "functions": {
                "snoop": { "handler": "Inspect", "directory": "snoop" },
                "other": { "handler": "Inspect", "directory": "other", "environment": { "SECRET": "\(Self.secret)" } },
                "py-a": { "command": ["python3", "-m", "awslambdaric", "probe.handler"], "directory": "py-a" },
                "py-b": { "command": ["python3", "-m", "awslambdaric", "probe.handler"], "directory": "py-b" }
              }
            }
            """
        )
    }

    /// Tries what the event lists, from inside a Python function.
    static let probe = """
        import os
        def handler(event, context):
            out = {"uid": os.getuid(), "parent": os.getppid()}
            for path in event.get("read", []):
                real = path.replace("{parent}", str(os.getppid()))
                try:
                    if os.path.isdir(real):
                        out[path] = "ok: %d entries" % len(os.listdir(real))
                    else:
                        with open(real, "rb") as f:
                            out[path] = "ok: %d bytes" % len(f.read())
                except OSError as error:
                    out[path] = "error: %s" % error.strerror
            for path in event.get("write", []):
                try:
                    with open(path, "w") as f:
                        f.write(event.get("text", "x"))
                    out["write " + path] = "ok"
                except OSError as error:
                    out["write " + path] = "error: %s" % error.strerror
            if event.get("signalParent"):
                try:
                    os.kill(os.getppid(), 0)
                    out["signal"] = "ok"
                except OSError as error:
                    out["signal"] = "error: %s" % error.strerror
            return out
        """

    static func object(_ answer: EnvironmentTests.Answer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], "\(answer.body)")
    }

    static func isDenied(_ result: String?) -> Bool {
        guard let result else { return false }
        return result.hasPrefix("error") || result == "ok: 0 bytes" || result == "ok: 0 entries"
    }

    @Test(.enabled(if: geteuid() == 0, "a uid per function needs a host running as root"))
    func aSwiftFunctionReachesNothingOfTheHostsOrAnotherFunctions() async throws {
        let server = try await ServerProcess(config: config, environment: ["AWS_SECRET_ACCESS_KEY": Self.secret])
        #expect(server.stderr.contains("kept apart by a uid per function"), "\(server.stderr)")
        let app = directory.url.path
        let probes = [
            "/proc/{parent}/environ", config, app, "\(app)/data", "\(app)/other", "\(app)/other/secret.txt",
            "\(app)/py-a/probe.py",
        ]
        let event: [String: Any] = [
            "reach": probes + ["\(app)/snoop/own.txt"], "signal": server.process.processIdentifier,
        ]
        let answer = try await EnvironmentTests.invoke(
            server,
            "snoop",
            String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self)
        )
        let object = try Self.object(answer)
        let reached = try #require(object["reached"] as? [String: String])
        // The control: its own folder is there to read.
        #expect(reached["\(app)/snoop/own.txt"] == "ok: 20 bytes", "\(reached)")
        for probe in probes where probe != app {
            #expect(Self.isDenied(reached[probe]), "\(probe): \(reached[probe] ?? "nothing")")
        }
        // The application's folder holds the function's own folder and nothing else.
        #expect(reached[app] == "ok: 1 entries", "\(reached)")
        #expect(reached["signal \(server.process.processIdentifier)"]?.hasPrefix("error") == true)
        #expect(!answer.body.contains(Self.secret))
        let uid = try #require(object["uid"] as? Int)
        let other = try Self.object(try await EnvironmentTests.invoke(server, "other", #"{"reach": []}"#))
        let otherUID = try #require(other["uid"] as? Int)
        #expect((61184...65519).contains(uid) && (61184...65519).contains(otherUID))
        #expect(uid != otherUID)
    }

    @Test(
        .enabled(if: geteuid() == 0, "a uid per function needs a host running as root"),
        .enabled(if: Tools.isCI || Tools.pythonHas("awslambdaric"), "awslambdaric is not installed")
    )
    func pythonFunctionsRunAsTheirOwnIdentitiesWithAPrivateTmp() async throws {
        let server = try await ServerProcess(config: config)
        let app = directory.url.path
        let marker = "/tmp/galley-tenancy-\(UUID().uuidString)"
        let write: [String: Any] = [
            "write": [marker, "\(app)/py-a/probe.py", "\(app)/py-b/probe.py"], "text": Self.secret,
            "read": [config, "\(app)/data", "\(app)/py-b", "\(app)/snoop/own.txt", "/proc/{parent}/environ"],
            "signalParent": true,
        ]
        let a = try Self.object(
            try await EnvironmentTests.invoke(
                server,
                "py-a",
                String(decoding: try JSONSerialization.data(withJSONObject: write), as: UTF8.self)
            )
        )
        // Its own /tmp is writable, and nothing else is.
        #expect(a["write \(marker)"] as? String == "ok", "\(a)")
        #expect(Self.isDenied(a["write \(app)/py-a/probe.py"] as? String), "\(a)")
        #expect(Self.isDenied(a["write \(app)/py-b/probe.py"] as? String), "\(a)")
        for path in [config, "\(app)/data", "\(app)/py-b", "\(app)/snoop/own.txt", "/proc/{parent}/environ"] {
            #expect(Self.isDenied(a[path] as? String), "\(path): \(a[path] ?? "nothing")")
        }
        #expect((a["signal"] as? String)?.hasPrefix("error") == true, "\(a)")
        #expect(!FileManager.default.fileExists(atPath: marker), "the function wrote to the host's /tmp")
        #expect(try String(contentsOfFile: "\(app)/py-b/probe.py", encoding: .utf8) == Self.probe)
        // Its /tmp is its own: the same environment reads it back, another function does not see it.
        let again = try Self.object(try await EnvironmentTests.invoke(server, "py-a", #"{"read": ["\#(marker)"]}"#))
        #expect(again[marker] as? String == "ok: \(Self.secret.utf8.count) bytes", "\(again)")
        let b = try Self.object(try await EnvironmentTests.invoke(server, "py-b", #"{"read": ["\#(marker)"]}"#))
        #expect(Self.isDenied(b[marker] as? String), "\(b)")
        let uidA = try #require(a["uid"] as? Int)
        let uidB = try #require(b["uid"] as? Int)
        #expect(uidA != 0 && uidB != 0 && uidA != uidB)
    }

    /// An unprivileged host (here root's `galley`, started as `nobody`) keeps its uid but gives each
    /// environment the same view of the files, in a user and mount namespace.
    @Test(
        .enabled(if: geteuid() == 0, "needs root to start the host as nobody"),
        .enabled(if: reachable(Binaries.galley.path, by: 65534), "nobody cannot reach the build folder"),
        .enabled(if: nobodyMayUnshare, "this kernel refuses user namespaces to unprivileged processes")
    )
    func anUnprivilegedHostHidesTheApplicationInAUserNamespace() async throws {
        let setpriv = try Tools.path(of: "setpriv")
        let app = try TemporaryDirectory()
        for folder in ["snoop", "other"] {
            try FileManager.default.createDirectory(
                at: app.url.appending(path: folder),
                withIntermediateDirectories: true
            )
        }
        try app.write("other/secret.txt", Self.secret)
        let file = try app.write(
            "runtime.json",
            #"{"functions": {"snoop": {"handler": "Inspect", "directory": "snoop"}, "other": {"handler": "Inspect", "directory": "other"}}}"#
        )
        _ = chown(app.url.path, 65534, 65534)
        let probes = ["/proc/{parent}/environ", file, "\(app.url.path)/other/secret.txt"]
        let event = String(decoding: try JSONSerialization.data(withJSONObject: ["reach": probes]), as: UTF8.self)
        let output = try await runProcess(
            setpriv,
            [
                "--reuid", "65534", "--regid", "65534", "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin",
                Binaries.galley.path, "invoke", "snoop", "--worker", "--config", file,
            ],
            stdin: event
        )
        let object = try #require(
            try JSONSerialization.jsonObject(with: output.stdout) as? [String: Any],
            "\(output.out) \(output.err)"
        )
        let reached = try #require(object["reached"] as? [String: String])
        for probe in probes {
            #expect(Self.isDenied(reached[probe]), "\(probe): \(reached[probe] ?? "nothing")")
        }
        #expect(object["uid"] as? Int == 65534)
    }

    /// Whether `nobody` may create a user namespace here (util-linux's `unshare`, as nobody).
    static let nobodyMayUnshare: Bool = {
        guard let setpriv = try? Tools.path(of: "setpriv"), let unshare = try? Tools.path(of: "unshare") else {
            return false
        }
        let process = Process()
        process.executableURL = URL(filePath: setpriv)
        process.arguments = ["--reuid", "65534", "--regid", "65534", "--clear-groups", unshare, "-U", "-m", "true"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// Whether every folder on the way to `path` lets `uid` (in no group of its own) through.
    static func reachable(_ path: String, by uid: uid_t) -> Bool {
        var folder = ""
        for component in path.split(separator: "/").dropLast() {
            folder += "/\(component)"
            var info = stat()
            guard stat(folder, &info) == 0 else { return false }
            if info.st_uid != uid && info.st_mode & S_IXOTH == 0 { return false }
        }
        return true
    }
}
