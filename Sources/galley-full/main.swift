import GalleyCLI
import GalleyHost
import GalleyPostgres
import GalleyTemplates
import Logging

// `galley` with what needs the whole of Foundation: the PostgreSQL store and queue, when runtime.json's
// `storage.postgres` (or `GALLEY_STORAGE_URL`) names a database, and AWS SAM templates. The lean
// `galley` hands such commands to this binary.
/// One pool per database, shared by the store and the queue.
let databases = PostgresDatabases()
StoreOpener.registerPostgres { url in PostgresStore(database: try databases.database(url)) }
QueueStorageOpener.registerPostgres { url, queue in
    PostgresQueue(database: try databases.database(url), lease: queue.lease)
}
SAMTemplate.registerReader()
await GalleyCommand.run()
