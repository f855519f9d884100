import GalleyCLI
import GalleyHost
import GalleyPostgres
import Logging

// `galley` with the PostgreSQL store: what `galley` runs when runtime.json's `storage.postgres` (or
// `GALLEY_STORAGE_URL`) names a database.
StoreOpener.registerPostgres { url in
    // Its connection log goes to stderr, never into a command's output.
    var logger = Logger(label: "galley.postgres") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    return try PostgresStore(url: url, logger: logger)
}
await GalleyCommand.run()
