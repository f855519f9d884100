import ArgumentParser
import GalleyHost

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoke",
        abstract: "Invoke a function with an event from a file or stdin; print its response on stdout.",
        discussion: """
            Exit status: 0 success, 1 function error (the error object is printed), 2 usage or configuration error.
            With --lines, each stdin line is one event and each stdout line one response, in order. Without a
            FUNCTION, each line is an envelope {"function": NAME, "event": {…}} and each answer
            {"function", "requestId", "result" or "error"}.
            """
    )

    @Argument(help: "The function's name in runtime.json. Omit it with --lines to read envelopes.")
    var function: String?

    @Option(name: .long, help: "A file holding the event JSON; stdin when omitted.")
    var event: String?

    @Flag(name: .long, help: "Read one event per line from stdin and answer each on its own line.")
    var lines = false

    @Flag(
        name: .long,
        help: """
            Run a Swift function in a worker process, under its own identity, as serve does. By default one \
            event runs in this process (with Lambda's fault results kept); --lines always uses a worker.
            """
    )
    var worker = false

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var environmentOverrides: EnvironmentOverrideOptions
    @OptionGroup var logOptions: LogOptions

    func validate() throws {
        if function == nil && !lines {
            throw ValidationError("Name a FUNCTION to invoke, or pass --lines to read envelopes from stdin.")
        }
        if lines && event != nil {
            throw ValidationError("--event and --lines cannot be used together: --lines reads events from stdin.")
        }
    }

    func run() async throws {
        try await reportingFailures {
            try environmentOverrides.install()
            let dispatcher = try configOptions.makeDispatcher(logOptions)
            // Worker processes end with the command, whatever way it ends.
            do {
                try await invoke(dispatcher)
                await dispatcher.shutdown()
            } catch {
                await dispatcher.shutdown()
                throw error
            }
        }
    }

    private func invoke(_ dispatcher: Dispatcher) async throws {
        let deployment = dispatcher.deployment
        if lines {
            let failed = try await runLines(dispatcher)
            if failed { throw ExitCode(1) }
            return
        }
        let function = self.function!
        try checkDeployed(function, in: deployment)
        let payload = try StandardStreams.contents(of: event, describedAs: "the event file '\(event ?? "")'")
        let result: InvocationResult
        // The answer keeps the real stdout; what the handler prints goes to stderr, as a worker's does.
        let answer = worker ? 1 : dup(1)
        if !worker { dup2(2, 1) }
        do throws(InvokeError) {
            let invocation = Invocation(function: function, payload: payload)
            result =
                worker
                ? try await dispatcher.invoke(invocation)
                : try await dispatcher.invokeInProcess(invocation, resultDescriptor: answer)
        } catch {
            let source = event.map { "event file '\($0)'" } ?? "event on stdin"
            switch error.code {
            case .invalidRequestContent:
                throw Failure("the \(source) is not valid JSON: \(error.reason ?? error.message)")
            case .requestTooLarge: throw Failure("the \(source) is too large: \(error.message)")
            default: throw Failure(error.message)
            }
        }
        StandardStreams.write(Array(result.payload) + [UInt8(ascii: "\n")], to: answer)
        if result.isFunctionError { throw ExitCode(1) }
    }

    private func checkDeployed(_ function: String, in deployment: Deployment) throws {
        guard deployment.functions[function] == nil else { return }
        let known = deployment.functions.keys.sorted().joined(separator: ", ")
        throw Failure("no function named '\(function)' in \(configOptions.config); deployed functions: \(known)")
    }

    /// Answers stdin line by line; returns whether any line failed.
    private func runLines(_ dispatcher: Dispatcher) async throws -> Bool {
        if let function { try checkDeployed(function, in: dispatcher.deployment) }
        let dispatcher = LineDispatcher(dispatcher: dispatcher, function: function)
        var failed = false
        for (index, line) in LineReader().enumerated() {
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let (answer, lineFailed) = await dispatcher.answer(line, number: index + 1)
            failed = failed || lineFailed
            StandardStreams.writeLine(answer)
        }
        return failed
    }
}
