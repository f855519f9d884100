import ArgumentParser
import Galley
import GalleyHost
import GalleyStore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct KV: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Read and write the key-value store that functions use (the file runtime.json names).",
        subcommands: [Get.self, Put.self, Delete.self, List.self, Import.self, Export.self]
    )

    /// `--config`, and the store it names.
    struct StoreOptions: ParsableArguments {
        @OptionGroup var configOptions: ConfigOptions

        func namespace(_ name: String) throws -> any KeyValueStore {
            let configuration = try configOptions.loadConfiguration()
            do {
                return try StoreOpener.configured(configuration, configurationFile: configOptions.config).store()
                    .namespace(
                        name
                    )
            } catch {
                throw Failure("\(error)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get",
            abstract: "Print the value of KEY (exit 1 when there is none)."
        )
        @Argument var namespace: String
        @Argument var key: String
        @Flag(name: .long, help: "Print the entry as an export line, with its version, expiry and metadata.")
        var entry = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reportingFailures {
                guard let found = try await storeCall({ try await store.namespace(namespace).get(key) }) else {
                    throw Failure("no key '\(key)' in namespace '\(namespace)'", exitCode: 1)
                }
                StandardStreams.writeLine(entry ? Array(StoreTransfer.line(for: found).utf8) : Array(found.value))
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "put",
            abstract: "Write VALUE (or stdin) under KEY and print the new version.",
            discussion: "A failed condition exits 1 and writes nothing."
        )
        @Argument var namespace: String
        @Argument var key: String
        @Argument(help: "The value; stdin when omitted. Store JSON to read it back with get(_:as:).")
        var value: String?
        @Option(name: .long, help: "Seconds until the entry expires.")
        var ttl: DecimalSeconds?
        @Option(name: .long, help: "Metadata as name=value; repeat for more.")
        var metadata: [String] = []
        @Flag(name: .long, help: "Write only if the key has no entry.")
        var ifAbsent = false
        @Option(name: .long, help: "Write only if the entry still has this version.")
        var ifVersion: Int64?
        @Flag(name: .long, help: "Store the bytes as they are, even when they are not JSON.")
        var raw = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            if let ttl {
                do {
                    _ = try PutOptions.ttl(seconds: ttl.value, of: "--ttl")
                } catch {
                    throw ValidationError(error.message)
                }
            }
            if ifAbsent && ifVersion != nil { throw ValidationError("--if-absent and --if-version cannot be combined") }
            for item in metadata where !item.contains("=") {
                throw ValidationError("--metadata '\(item)' must be name=value")
            }
        }

        func run() async throws {
            try await reportingFailures {
                let bytes = value.map { Data($0.utf8) } ?? StandardStreams.readAll()
                // Handlers read values with get(_:as:), which decodes JSON: `notjson` would fail there.
                if !raw {
                    do {
                        try JSONSyntax.validate(bytes)
                    } catch {
                        throw Failure(
                            "the value is not JSON (\(error); handlers read values with get(_:as:)): quote a "
                                + "string as '\"text\"', or pass --raw to store the bytes as they are"
                        )
                    }
                }
                var pairs: [String: String] = [:]
                for item in metadata {
                    let equals = item.firstIndex(of: "=")!
                    pairs[String(item[..<equals])] = String(item[item.index(after: equals)...])
                }
                let options = PutOptions(
                    ttl: try ttl.map { try PutOptions.ttl(seconds: $0.value, of: "--ttl") },
                    metadata: pairs.isEmpty ? nil : pairs,
                    condition: ifAbsent ? .ifAbsent : ifVersion.map { .ifVersion($0) }
                )
                let version = try await storeCall {
                    try await store.namespace(namespace).put(key, bytes, options: options)
                }
                StandardStreams.writeLine(Array(String(version).utf8))
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Delete KEY (exit 1 when there was none)."
        )
        @Argument var namespace: String
        @Argument var key: String
        @Option(name: .long, help: "Delete only if the entry still has this version.")
        var ifVersion: Int64?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reportingFailures {
                let existed = try await storeCall {
                    try await store.namespace(namespace).delete(key, ifVersion: ifVersion)
                }
                if !existed { throw Failure("no key '\(key)' in namespace '\(namespace)'", exitCode: 1) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Print the keys of NAMESPACE, one per line, in order."
        )
        @Argument var namespace: String
        @Option(name: .long, help: "Only keys that start with this.")
        var prefix = ""
        @Option(name: .long, help: "At most this many keys (1 to 1000).")
        var limit = 1000
        @Option(name: .long, help: "Start after this key (the cursor a previous page printed).")
        var after: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reportingFailures {
                let page = try await storeCall {
                    try await store.namespace(namespace).list(prefix: prefix, after: after, limit: limit)
                }
                for key in page.keys { StandardStreams.writeLine(Array(key.utf8)) }
                if let cursor = page.cursor {
                    StandardStreams.writeError("galley: more keys follow; continue with --after '\(cursor)'")
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Print every live entry of NAMESPACE as a JSON line (the format import reads)."
        )
        @Argument var namespace: String
        @Option(name: .long, help: "Only keys that start with this.")
        var prefix = ""
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reportingFailures {
                let kv = try store.namespace(namespace)
                var cursor: String?
                repeat {
                    let page = try await storeCall { try await kv.list(prefix: prefix, after: cursor, limit: 1000) }
                    for entry in page.entries { StandardStreams.writeLine(Array(StoreTransfer.line(for: entry).utf8)) }
                    cursor = page.cursor
                } while cursor != nil
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract:
                "Write JSON lines ({\"key\", \"value\", \"ttl\"?, \"metadata\"?}) from FILE or stdin, all or none."
        )
        @Argument var namespace: String
        @Argument(help: "The file of JSON lines; - or nothing for stdin.")
        var file: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await reportingFailures {
                let data = try StandardStreams.contents(of: file == "-" ? nil : file, describedAs: "'\(file ?? "-")'")
                let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                let operations: [AtomicOperation]
                do throws(StoreTransfer.LineError) {
                    operations = try StoreTransfer.operations(forLines: lines)
                } catch {
                    throw Failure("\(file ?? "stdin"): \(error); nothing was imported")
                }
                guard !operations.isEmpty else {
                    StandardStreams.writeError("galley: nothing to import")
                    return
                }
                try await storeCall { try await store.namespace(namespace).atomic(operations) }
                StandardStreams.writeError("galley: imported \(operations.count) entries into '\(namespace)'")
            }
        }
    }
}

/// Runs a store call, turning a ``StoreError`` into a one-line failure (exit 1 for a conflict).
@discardableResult
private func storeCall<Value>(_ body: () async throws -> Value) async throws -> Value {
    do {
        return try await body()
    } catch let error as StoreError {
        throw Failure(error.message, exitCode: error.code == .conflict ? 1 : 2)
    }
}
