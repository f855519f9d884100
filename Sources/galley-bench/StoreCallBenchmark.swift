import Functions
import Galley
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A store call from a worker process (one round trip to the host over the worker's channel)
/// against the same call from an inline handler, in one run: `inspect`'s `storeLoop` makes N gets or
/// N durable puts of one key inside one invocation, timed from the dispatcher.
struct StoreCallBenchmark {
    let binaries: String
    let workDirectory: String
    var calls = 5_000
    var rounds = 3

    func run() async throws -> String {
        let json = """
            {"storage": {"path": "\(workDirectory)/store-calls"},
             "functions": {"worker": {"handler": "Inspect", "timeout": 600},
                           "inline": {"handler": "Inspect", "timeout": 600, "isolation": "inline"}}}
            """
        let configuration = try RuntimeConfiguration(json: Data(json.utf8), file: "store-calls.json")
        let opener = StoreOpener.sqlite(configuration, configurationFile: "\(workDirectory)/store-calls.json")
        let dispatcher = Dispatcher(
            deployment: try Deployment(configuration: configuration, catalog: catalog, file: "store-calls.json"),
            logWriter: .discarding,
            stores: StoreAccess.provider(opener),
            workerExecutable: "\(binaries)/galley",
            configurationFolder: workDirectory
        )
        var text = """
            ### Store calls from a worker process against the same calls inline

            `inspect` makes \(calls) calls of one key in its own namespace inside one invocation (durable puts:
            `storage.durability` full, one transaction each); medians of \(rounds) alternating rounds.

            | call | worker calls/s | inline calls/s | worker / inline |
            |---|---|---|---|

            """
        for op in ["get", "put"] {
            var worker: [Double] = []
            var inline: [Double] = []
            let event = Data(#"{"storeLoop": {"op": "\#(op)", "count": \#(calls)}}"#.utf8)
            _ = try await dispatcher.invoke(Invocation(function: "worker", payload: event))  // warm
            _ = try await dispatcher.invoke(Invocation(function: "inline", payload: event))
            for _ in 0..<rounds {
                for function in ["worker", "inline"] {
                    let started = ContinuousClock.now
                    let result = try await dispatcher.invoke(Invocation(function: function, payload: event))
                    precondition(!result.isFunctionError, String(decoding: result.payload, as: UTF8.self))
                    let rate = Double(calls) / seconds(ContinuousClock.now - started)
                    if function == "worker" { worker.append(rate) } else { inline.append(rate) }
                }
            }
            let (w, i) = (worker.sorted()[rounds / 2], inline.sorted()[rounds / 2])
            text += "| \(op) | \(format(w, 0)) | \(format(i, 0)) | **\(format(w / i))x** |\n"
        }
        await dispatcher.shutdown()
        return text
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
