#if canImport(Glibc)
    import Glibc
#endif

// `swift run -c release galley-bench [startup] [store] [postgres-store] [postgres-hosts] [environments] [store-calls] [queue] [codec] [floor] [http] [python] [observability] [--runs N]`: prints Markdown for BENCHMARKS.md.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "pingpong-echo" {
    PingPongBenchmark.echo()
    exit(0)
}
if arguments.first == "pingpong-drive" {
    PingPongBenchmark.drive(Array(arguments.dropFirst()))
    exit(0)
}
if arguments.first == "store-worker" {
    try await StoreBenchmark.worker(Array(arguments.dropFirst()))
    exit(0)
}
let executable = String(cString: realpath(CommandLine.arguments[0], nil))
let binaries = String(executable[..<executable.lastIndex(of: "/")!])
var runs = 40
if let index = arguments.firstIndex(of: "--runs"), index + 1 < arguments.count, let value = Int(arguments[index + 1]) {
    runs = value
}
let selected = Set(arguments.filter { !$0.hasPrefix("--") && Int($0) == nil })
var template = Array("/tmp/galley-bench-XXXXXX".utf8CString)
guard let made = mkdtemp(&template) else { fatalError("cannot create a temporary folder") }
let workDirectory = String(cString: made)
defer { _ = system("rm -rf '\(workDirectory)'") }

print("Measured \(nproc()) cores; binaries from \(binaries)\n")
if selected.isEmpty || selected.contains("startup") {
    print(StartupBenchmark(binaries: binaries, workDirectory: workDirectory, runs: runs).run())
}

if selected.isEmpty || selected.contains("store") {
    print(try await StoreBenchmark(workDirectory: workDirectory, binaries: binaries).run())
}

if selected.isEmpty || selected.contains("environments") {
    print(try await EnvironmentBenchmark(binaries: binaries, workDirectory: workDirectory).run())
}

if selected.isEmpty || selected.contains("postgres-store") {
    print(try await PostgresStoreBenchmark().run())
}

if selected.isEmpty || selected.contains("postgres-hosts") {
    print(try await PostgresHostsBenchmark(binaries: binaries, workDirectory: workDirectory).run())
}

if selected.isEmpty || selected.contains("store-calls") {
    print(try await StoreCallBenchmark(binaries: binaries, workDirectory: workDirectory).run())
}

if selected.isEmpty || selected.contains("queue") {
    print(try await QueueBenchmark(binaries: binaries, workDirectory: workDirectory).run())
}

if selected.isEmpty || selected.contains("codec") {
    print(try CodecBenchmark().run())
}

if selected.isEmpty || selected.contains("http") || selected.contains("floor") {
    print(PingPongBenchmark(binaries: binaries).run())
}

if selected.isEmpty || selected.contains("http") {
    print(try HTTPBenchmark(binaries: binaries, workDirectory: workDirectory).run())
}

if selected.isEmpty || selected.contains("python") {
    print(try HTTPBenchmark(binaries: binaries, workDirectory: workDirectory).python())
}

if selected.isEmpty || selected.contains("observability") {
    print(try HTTPBenchmark(binaries: binaries, workDirectory: workDirectory).observability())
}

func nproc() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
