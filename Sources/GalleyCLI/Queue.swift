import ArgumentParser
import GalleyHost

struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Show the async queue per function: waiting, running, oldest, delivered, retries, dead letters.",
        discussion: "Reads the queue (the file in the storage folder, or PostgreSQL); no running host is needed."
    )

    @Flag(name: .long, help: "Print the JSON document that /_galley/queue serves.")
    var json = false
    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        try await reportingFailures {
            let inspector = try configOptions.queueInspector()
            if json {
                StandardStreams.writeLine(Array(await inspector.statusJSON().utf8))
                return
            }
            let rows = try await queueCall { try await inspector.status() }
            var table = [
                [
                    "FUNCTION", "WAITING", "RUNNING", "OLDEST", "DELIVERED", "ATTEMPTS", "RETRIES", "THROTTLES",
                    "DEAD LETTERS",
                ]
            ]
            for row in rows {
                table.append([
                    row.function, String(row.depth), String(row.running),
                    row.oldestAge.map { "\($0 / 1000) s" } ?? "-", String(row.delivered), String(row.attempts),
                    String(row.retries), String(row.throttles), String(row.deadLetters),
                ])
            }
            if rows.isEmpty { table.append(["(empty)"]) }
            StandardStreams.writeLine(Array(TextTable.render(table).utf8))
        }
    }
}

struct DLQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect and re-drive the dead letters of Event invocations.",
        subcommands: [List.self, Show.self, Replay.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List FUNCTION's dead letters, oldest first."
        )
        @Argument var function: String
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            try await reportingFailures {
                let letters = try await queueCall {
                    try await configOptions.queueInspector().deadLetters(function: function)
                }
                // A function that is not deployed and left no letters is most likely a typo.
                let deployed = try configOptions.loadConfiguration().functions.keys.sorted()
                if letters.isEmpty, !deployed.contains(function) {
                    throw Failure(
                        "\(configOptions.config): no function named '\(function)'; deployed: \(deployed.joined(separator: ", "))"
                    )
                }
                var table = [["ID", "FAILED AT", "CONDITION", "ATTEMPTS", "ERROR TYPE", "REQUEST ID"]]
                for letter in letters {
                    table.append([
                        String(letter.id), QueueInspector.format(epochMilliseconds: letter.failedAt), letter.condition,
                        String(letter.attempts), letter.errorType ?? "-", letter.requestID,
                    ])
                }
                if letters.isEmpty { table.append(["(none)"]) }
                StandardStreams.writeLine(Array(TextTable.render(table).utf8))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print one dead letter: its record in Lambda's on-failure destination format."
        )
        @Argument var function: String
        @Argument(help: "The ID that 'galley dlq list' prints.") var id: Int64
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            try await reportingFailures {
                guard
                    let letter = try await queueCall({
                        try await configOptions.queueInspector().deadLetter(function: function, id: id)
                    })
                else {
                    throw Failure("no dead letter \(id) of function '\(function)'", exitCode: 1)
                }
                StandardStreams.writeLine(Array(letter.record))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Queue FUNCTION's dead letters (or the one ID) again as new events, with no attempts counted.",
            discussion: "A running host delivers them within a second; otherwise the next 'galley serve' does."
        )
        @Argument var function: String
        @Argument(help: "One dead letter; all of FUNCTION's when omitted.") var id: Int64?
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            try await reportingFailures {
                try await DLQ.change(
                    function,
                    id,
                    configOptions,
                    done: { "queued \($0) dead letters of \(function) again" }
                ) {
                    try await $0.replay(function: function, id: id)
                }
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Delete FUNCTION's dead letters (or the one ID)."
        )
        @Argument var function: String
        @Argument(help: "One dead letter; all of FUNCTION's when omitted.") var id: Int64?
        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            try await reportingFailures {
                try await DLQ.change(function, id, configOptions, done: { "deleted \($0) dead letters of \(function)" })
                {
                    try await $0.purge(function: function, id: id)
                }
            }
        }
    }
}

extension DLQ {
    /// Runs `change` on the queue file and reports how many dead letters it touched with `done`;
    /// one named `id` that does not exist exits 1.
    static func change(
        _ function: String,
        _ id: Int64?,
        _ options: ConfigOptions,
        done: (Int) -> String,
        _ change: (QueueInspector) async throws -> Int
    ) async throws {
        let inspector = try options.queueInspector()
        let count = try await queueCall { try await change(inspector) }
        if let id, count == 0 { throw Failure("no dead letter \(id) of function '\(function)'", exitCode: 1) }
        StandardStreams.writeError("galley: " + done(count))
    }
}

extension ConfigOptions {
    /// The queue file of the configuration, or a one-line error and exit 2.
    func queueInspector() throws -> QueueInspector {
        let configuration = try loadConfiguration()
        do {
            return try QueueInspector(configuration, configurationFile: config)
        } catch {
            throw Failure("\(error)")
        }
    }
}

/// Runs a queue-file call; its errors become one line and exit 2.
func queueCall<Value>(_ body: () async throws -> Value) async throws -> Value {
    do {
        return try await body()
    } catch let failure as Failure {
        throw failure
    } catch {
        throw Failure("\(error)")
    }
}
