#if canImport(Glibc)
    import Glibc
#endif

/// One-shot `galley invoke hello < event` against `bench-echo < event`, alternating, same build.
struct StartupBenchmark {
    let binaries: String
    let workDirectory: String
    var runs = 40

    func run() -> String {
        let event = "\(workDirectory)/event.json"
        let config = "\(workDirectory)/runtime.json"
        write(file: event, #"{"name": "Ada"}"#)
        write(file: config, #"{"functions": {"hello": {"handler": "Hello"}}}"#)
        let galley = "\(binaries)/galley"
        let echo = "\(binaries)/bench-echo"
        let galleyArguments = ["invoke", "hello", "--config", config]
        for _ in 0..<5 {  // warm the page cache
            _ = timeProcess(galley, galleyArguments, stdinFile: event)
            _ = timeProcess(echo, [], stdinFile: event)
        }
        var galleyTimes: [Double] = []
        var echoTimes: [Double] = []
        for round in 0..<runs {
            // Alternate which goes first, so neither always follows the other.
            if round % 2 == 0 {
                galleyTimes.append(milliseconds(timeProcess(galley, galleyArguments, stdinFile: event)))
                echoTimes.append(milliseconds(timeProcess(echo, [], stdinFile: event)))
            } else {
                echoTimes.append(milliseconds(timeProcess(echo, [], stdinFile: event)))
                galleyTimes.append(milliseconds(timeProcess(galley, galleyArguments, stdinFile: event)))
            }
        }
        let g = Samples(galleyTimes)
        let e = Samples(echoTimes)
        return """
            ### Start-up: one-shot invoke (\(runs) runs each, alternating)

            | command | median ms | p90 ms | min ms |
            |---|---|---|---|
            | `galley invoke hello < event.json` | \(format(g.median)) | \(format(g.percentile(90))) | \(format(g.values[0])) |
            | `bench-echo < event.json` (decode + encode only) | \(format(e.median)) | \(format(e.percentile(90))) | \(format(e.values[0])) |
            | **ratio** (target ≤ 1.5x) | **\(format(g.median / e.median))x** | \(format(g.percentile(90) / e.percentile(90)))x | |

            """
    }

    private func write(file: String, _ text: String) {
        guard let handle = fopen(file, "w") else { fatalError("cannot write \(file)") }
        fputs(text, handle)
        fclose(handle)
    }
}
