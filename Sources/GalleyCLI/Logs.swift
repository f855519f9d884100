import ArgumentParser
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract:
            "Print a function's log lines from a running galley serve; --follow keeps printing them as they come.",
        discussion: """
            Reads the host's /_galley/logs feed at runtime.json's server address (or --url): the lines it keeps \
            (the last 1,000 per function), then, with --follow, every new line until the host stops or you press \
            Ctrl-C. Like `sam logs -n FUNCTION --tail`.
            """
    )

    @Argument(help: "The function's name in runtime.json.")
    var function: String

    @Flag(name: [.short, .long], help: "Keep printing new lines as they come.")
    var follow = false

    @Option(name: .long, help: "Only lines from this long ago on: 90s, 10m, 2h, 1d.")
    var since: String?

    @Option(name: .long, help: "Only lines that contain TEXT.")
    var filter: String?

    @Flag(name: .long, help: "Print each line as a JSON object {function, requestId, text, time}.")
    var json = false

    @Option(
        name: .long,
        help: "The host, e.g. http://127.0.0.1:9000 or unix:/run/galley.sock (default: runtime.json's)."
    )
    var url: String?

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        if let since, Self.milliseconds(since) == nil {
            throw ValidationError("--since takes a number and a unit (s, m, h or d), such as 10m; found '\(since)'")
        }
        if let url, Self.address(url) == nil {
            throw ValidationError("--url takes http://HOST:PORT or unix:PATH; found '\(url)'")
        }
    }

    func run() async throws {
        try await reportingFailures {
            let address: ListenAddress
            if let url {
                address = Self.address(url)!
            } else {
                let server = try configOptions.loadConfiguration().server
                address = .tcp(host: server.host, port: server.port)
            }
            let since = since.flatMap(Self.milliseconds).map { Int64(Date().timeIntervalSince1970 * 1000) - $0 }
            let json = self.json
            do {
                try await LogsClient.stream(
                    from: address,
                    function: function,
                    since: since,
                    filter: filter,
                    follow: follow
                ) { line in
                    if json {
                        StandardStreams.writeLine(Array(line.utf8))
                    } else if let event = try? JSONDecoder().decode(FeedLine.self, from: Data(line.utf8)) {
                        StandardStreams.writeLine(Array(event.text.utf8))
                    }
                }
            } catch let error as LogsClient.Failure {
                throw Failure(error.description)
            }
        }
    }

    /// One line of the feed, as far as the text output needs it.
    struct FeedLine: Decodable {
        var text: String
    }

    /// `10m` → 600,000.
    static func milliseconds(_ text: String) -> Int64? {
        guard let unit = text.last, let value = Double(text.dropLast()), value >= 0 else { return nil }
        let scale: Double? =
            switch unit {
            case "s": 1000
            case "m": 60_000
            case "h": 3_600_000
            case "d": 86_400_000
            default: nil
            }
        return scale.map { Int64(value * $0) }
    }

    static func address(_ url: String) -> ListenAddress? {
        if url.hasPrefix("unix:") { return .socket(path: String(url.dropFirst(5))) }
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else { return nil }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return .tcp(host: host, port: port)
    }
}
