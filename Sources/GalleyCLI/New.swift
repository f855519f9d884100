import ArgumentParser
import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `galley new NAME`: a function ready to invoke, in the house style.
struct New: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Create a function: its folder, handler, catalog line, runtime.json entry, sample event and test.",
        discussion: """
            Files are created beside runtime.json (--config): Functions/<Type>/, Tests/FunctionsTests/<Type>Tests.swift \
            for Swift, one line in Functions/Catalog.swift and the runtime.json entry. Nothing is overwritten: an \
            existing function, folder or file stops the command before anything is written.
            """
    )

    @Argument(help: "The function's name in runtime.json: letters, digits, '-' and '_'.")
    var name: String

    @Option(name: .long, help: "An HTTP route for it, e.g. \"GET /greet/{name}\".")
    var route: String?

    @Flag(name: .long, help: "A Python function run by awslambdaric instead of a Swift handler.")
    var python = false

    @Flag(name: .long, help: "A ByteHandler (raw bytes in and out) instead of a Codable Handler.")
    var byte = false

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        guard name.wholeMatch(of: /[A-Za-z][A-Za-z0-9_-]{0,63}/) != nil else {
            throw ValidationError(
                "NAME must start with a letter and hold only letters, digits, '-' and '_', at most 64"
            )
        }
        if python && byte { throw ValidationError("--python and --byte cannot be combined") }
    }

    /// The names in runtime.json's `functions`, whatever their configuration.
    struct Deployed: Decodable {
        struct Anything: Decodable {
            init(from decoder: any Decoder) throws {}
        }
        var functions: [String: Anything] = [:]
    }

    /// `greet-user` → `GreetUser`.
    var typeName: String {
        name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined()
    }

    func run() async throws {
        try await reportingFailures {
            let root = URL(filePath: configOptions.config).deletingLastPathComponent()
            // Only the names: a runtime.json with no functions yet is a fine place to start.
            let configText: String
            let existing: Deployed
            do {
                configText = try String(contentsOf: URL(filePath: configOptions.config), encoding: .utf8)
                existing = try JSONDecoder().decode(Deployed.self, from: Data(configText.utf8))
            } catch {
                throw Failure("\(configOptions.config): cannot read its functions: \(error)")
            }
            guard existing.functions[name] == nil else {
                throw Failure("\(configOptions.config): a function named '\(name)' exists already; nothing was written")
            }
            let folder = root.appending(path: "Functions/\(python ? name : typeName)")
            var files: [(URL, String)] = []
            var entry: [(String, String)] = []
            if python {
                files.append((folder.appending(path: "app.py"), Self.pythonHandler(name)))
                entry.append(("command", #"["python3", "-m", "awslambdaric", "app.handler"]"#))
                entry.append(("directory", Self.quote("Functions/\(name)")))
            } else {
                files.append((folder.appending(path: "\(typeName).swift"), swiftHandler))
                files.append(
                    (root.appending(path: "Tests/FunctionsTests/\(typeName)Tests.swift"), swiftTest)
                )
                entry.append(("handler", Self.quote(typeName)))
            }
            files.append((folder.appending(path: "events/sample.json"), #"{"name": "Ada"}"# + "\n"))
            if let route { entry.append(("routes", "[\(Self.quote(route))]")) }
            for (file, _) in files where FileManager.default.fileExists(atPath: file.path) {
                throw Failure("\(file.path) exists already; nothing was written")
            }
            let catalogFile = root.appending(path: "Functions/Catalog.swift")
            var catalogText: String?
            if !python {
                guard var text = try? String(contentsOf: catalogFile, encoding: .utf8),
                    let close = text.ranges(of: "\n]").last
                else { throw Failure("\(catalogFile.path): no catalog array to add the handler to") }
                text.replaceSubrange(close, with: "\n    .handler(\"\(typeName)\", \(typeName).self),\n]")
                catalogText = text
            }
            // Check the new runtime.json as every command will read it, before touching anything.
            let updated = try insert(entry, into: configText)
            do {
                _ = try RuntimeConfiguration(json: Data(updated.utf8), file: configOptions.config)
            } catch {
                throw Failure("the new entry would not be valid: \(error)")
            }
            for (file, text) in files {
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(),
                    withIntermediateDirectories: true
                )
                try Data(text.utf8).write(to: file)
            }
            if let catalogText { try Data(catalogText.utf8).write(to: catalogFile) }
            try Data(updated.utf8).write(to: URL(filePath: configOptions.config))
            let made = files.map { $0.0.path.replacing(root.path + "/", with: "") }
            StandardStreams.writeLine(Array("created \(name): \(made.joined(separator: ", "))".utf8))
            let sample = folder.appending(path: "events/sample.json").path.replacing(root.path + "/", with: "")
            let invoke = "galley invoke \(name) --event \(sample)"
            StandardStreams.writeLine(Array("try it: \(python ? invoke : "swift run " + invoke)".utf8))
        }
    }

    /// runtime.json with `entry` added as the first member of `functions`, the rest as written.
    func insert(_ entry: [(String, String)], into text: String) throws -> String {
        guard let functions = text.firstRange(of: /"functions"\s*:\s*\{/) else {
            throw Failure("\(configOptions.config): no \"functions\" object to add '\(name)' to")
        }
        let body = "{ " + entry.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + " }"
        let empty = text[functions.upperBound...].drop { $0.isWhitespace }.first == "}"
        var updated = text
        updated.insert(
            contentsOf: "\n    \(Self.quote(name)): \(body)\(empty ? "\n  " : ",")",
            at: functions.upperBound
        )
        return updated
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case _ where scalar.value < 0x20:
                quoted +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    var swiftHandler: String {
        let routed = route != nil
        if byte {
            return """
                import Galley

                #if canImport(FoundationEssentials)
                    import FoundationEssentials
                #else
                    import Foundation
                #endif

                /// \(typeName): raw bytes in, raw bytes out (`"handler": "\(typeName)"` in runtime.json).
                struct \(typeName): ByteHandler {
                    init(context: InitContext) {}

                    func handle(_ payload: Data, context: Context) async throws -> Data {
                        context.logger.info("received \\(payload.count) bytes")
                        return payload
                    }
                }

                """
        }
        return """
            import Galley

            /// \(typeName): `{"name": "Ada"}` → `{"message": "Hello, Ada!"}`\(routed ? ", or the name from the route's path" : "").
            struct \(typeName): Handler {
                struct Event: Decodable {
                    var name: String?
            \(routed ? "        /// Set when the function is called through its route.\n        var pathParameters: [String: String]?\n" : "")\
                }

                struct Output: Encodable {
                    var message: String
                }

                /// Lambda's init phase: runs once per environment.
                init(context: InitContext) {}

                func handle(_ event: Event, context: Context) async throws -> Output {
                    let name = event.name\(routed ? " ?? event.pathParameters?.values.first" : "") ?? "world"
                    context.logger.info("greeting \\(name)")
                    return Output(message: "Hello, \\(name)!")
                }
            }

            """
    }

    var swiftTest: String {
        if byte {
            return """
                import Foundation
                import Galley
                import Testing

                @testable import Functions

                struct \(typeName)Tests {
                    @Test func answersWithWhatItReceived() async throws {
                        let handler = \(typeName)(context: .forTesting(functionName: "\(name)"))
                        let payload = Data(#"{"name": "Ada"}"#.utf8)
                        #expect(try await handler.handle(payload, context: .forTesting(functionName: "\(name)")) == payload)
                    }
                }

                """
        }
        return """
            import Galley
            import Testing

            @testable import Functions

            struct \(typeName)Tests {
                @Test func greetsByName() async throws {
                    let handler = \(typeName)(context: .forTesting(functionName: "\(name)"))
                    let output = try await handler.handle(.init(name: "Ada"), context: .forTesting(functionName: "\(name)"))
                    #expect(output.message == "Hello, Ada!")
                }
            }

            """
    }

    static func pythonHandler(_ name: String) -> String {
        """
        \"\"\"\(name): {"name": "Ada"} → {"message": "Hello, Ada!"}, run by awslambdaric as on AWS Lambda.\"\"\"


        def handler(event, context):
            name = (event or {}).get("name") or ((event or {}).get("pathParameters") or {}).get("name") or "world"
            print(f"greeting {name}")
            return {"message": f"Hello, {name}!"}

        """
    }
}
