import ArgumentParser
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print sample events to use as event files.",
        subcommands: [HTTP.self]
    )

    struct HTTP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http",
            abstract: "Print an API Gateway HTTP API (payload 2.0) event for a request.",
            discussion: """
                When runtime.json (--config) has a route that matches, the event carries its routeKey and path parameters, \
                exactly as `galley serve` would build it.
                """
        )

        @Option(name: .long, help: "The HTTP method.")
        var method = "GET"

        @Option(name: .long, help: "The path, with an optional ?query.")
        var path: String

        @Option(name: .long, help: "The request body.")
        var body: String?

        @Option(name: .long, help: "A header as Name:Value; repeat for more.")
        var header: [String] = []

        @Option(name: .long, help: "The runtime configuration file whose routes are matched, if it exists.")
        var config = "runtime.json"

        func validate() throws {
            guard path.hasPrefix("/") else { throw ValidationError("--path must start with '/', e.g. /hello") }
            for item in header where !item.contains(":") {
                throw ValidationError("--header '\(item)' must be Name:Value")
            }
        }

        func run() async throws {
            try await reportingFailures {
                let (path, query) = HTTPEventBuilder.split(target: self.path)
                let headers = header.map { item in
                    let colon = item.firstIndex(of: ":")!
                    return (String(item[..<colon]), String(item[item.index(after: colon)...].drop { $0 == " " }))
                }
                var builder = HTTPEventBuilder(
                    method: method.uppercased(),
                    path: path,
                    query: query,
                    headers: headers,
                    body: body.map { Array($0.utf8) }
                )
                // Routes are matched when the configuration exists; a broken one is reported, not skipped.
                if FileManager.default.fileExists(atPath: config) {
                    let configuration: RuntimeConfiguration
                    do throws(ConfigurationError) {
                        configuration = try RuntimeConfiguration.load(from: config)
                    } catch {
                        throw Failure(error.description)
                    }
                    builder.route = RouteTable(configuration: configuration).match(method: builder.method, path: path)
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                StandardStreams.writeLine(try encoder.encode(builder.build()))
            }
        }
    }
}
