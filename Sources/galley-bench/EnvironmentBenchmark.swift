import Functions
import Galley
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Cold starts of worker processes (spawn to first response, through the dispatcher) and the
/// resident memory of an idle warm Swift environment, against a bare `bench-echo` process start
/// measured in the same run.
struct EnvironmentBenchmark {
    let binaries: String
    let workDirectory: String
    var coldStarts = 100

    func run() async throws -> String {
        let configuration = try RuntimeConfiguration(
            json: Data(#"{"functions": {"hello": {"handler": "Hello", "concurrency": 1}}}"#.utf8),
            file: "bench.json"
        )
        func deployment() throws -> Deployment {
            try Deployment(configuration: configuration, catalog: catalog, file: "bench.json")
        }
        let dispatcher = Dispatcher(
            deployment: try deployment(),
            logWriter: .discarding,
            workerExecutable: "\(binaries)/galley",
            configurationFolder: workDirectory
        )
        let event = Data(#"{"name":"Ada"}"#.utf8)
        var cold: [Double] = []
        var echo: [Double] = []
        for _ in 0..<coldStarts {
            // A new deployment retires the warm environment: the next invocation is a cold start.
            dispatcher.replaceDeployment(try deployment())
            let started = ContinuousClock.now
            let result = try await dispatcher.invoke(Invocation(function: "hello", payload: event))
            cold.append(milliseconds(ContinuousClock.now - started))
            precondition(!result.isFunctionError, String(decoding: result.payload, as: UTF8.self))
            echo.append(timeEcho())
        }
        // Warm and idle: the worker's own resident memory.
        _ = try await dispatcher.invoke(Invocation(function: "hello", payload: event))
        let rss = childrenResidentMB()
        var warm: [Double] = []
        for _ in 0..<1000 {
            let started = ContinuousClock.now
            _ = try await dispatcher.invoke(Invocation(function: "hello", payload: event))
            warm.append(milliseconds(ContinuousClock.now - started))
        }
        await dispatcher.shutdown()
        cold.sort()
        echo.sort()
        warm.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double {
            values[min(values.count - 1, Int(Double(values.count) * p))]
        }
        return """
            ### Environments: `galley worker` processes (`hello`, debug or release as built)

            \(coldStarts) cold starts through the dispatcher (spawn, init, first response, each after a redeploy),
            1,000 warm invocations in a row, and the resident memory of one idle warm worker.
            Baseline: starting `bench-echo` (a Swift binary that echoes stdin JSON) in the same run.

            | measurement | median | p99 | target |
            |---|---|---|---|
            | cold start, spawn to first response | \(format(percentile(cold, 0.5))) ms | \(format(percentile(cold, 0.99))) ms | < 50 ms |
            | bare `bench-echo` process start | \(format(percentile(echo, 0.5))) ms | \(format(percentile(echo, 0.99))) ms | |
            | cold start / process start | **\(format(percentile(cold, 0.5) / percentile(echo, 0.5)))x** | | |
            | warm invocation (in-process dispatcher → worker → back) | \(format(percentile(warm, 0.5))) ms | \(format(percentile(warm, 0.99))) ms | |
            | idle warm Swift environment, RSS | \(rss.map { "\($0) MB" } ?? "n/a") | | < 20 MB |

            """
    }

    private func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    /// One start of `bench-echo`, stdin from a file, in milliseconds.
    private func timeEcho() -> Double {
        let input = "\(workDirectory)/echo-event.json"
        if access(input, R_OK) != 0 {
            let handle = fopen(input, "w")
            fputs(#"{"name":"Ada"}"#, handle)
            fclose(handle)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let path = "\(binaries)/bench-echo"
        let argv = [strdup(path), nil]
        defer { free(argv[0]) }
        let started = ContinuousClock.now
        var pid = pid_t()
        guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return 0 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return milliseconds(ContinuousClock.now - started)
    }

    /// The resident memory of this process's first child (the warm worker), in MB.
    private func childrenResidentMB() -> Int? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for task in tasks {
            let children = (try? String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ") {
                let status = (try? String(contentsOfFile: "/proc/\(child)/status", encoding: .utf8)) ?? ""
                for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
                    return ((Int(line.filter(\.isNumber)) ?? 0) + 1023) / 1024
                }
            }
        }
        return nil
    }
}
