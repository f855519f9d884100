import GalleyCLI
import GalleyHost
import GalleyPostgres
import GalleyTemplates
import Logging

// `galley` with what needs the whole of Foundation: the PostgreSQL store, when runtime.json's
// `storage.postgres` (or `GALLEY_STORAGE_URL`) names a database, and AWS SAM templates. The lean
// `galley` hands such commands to this binary.
StoreOpener.registerPostgres { url in
    // Its connection log goes to stderr, never into a command's output.
    var logger = Logger(label: "galley.postgres") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    return try PostgresStore(url: url, logger: logger)
}
SAMTemplate.registerReader()
await GalleyCommand.run()
