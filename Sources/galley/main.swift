import GalleyCLI

// The lean binary: everything but the PostgreSQL store and SAM templates, which would slow every
// `galley invoke` and every worker's start (postgres-nio and Yams bring in the whole of Foundation);
// a command whose store is in PostgreSQL, or that reads a template, is handed to `galley-full`,
// beside this binary.
await GalleyCommand.run()
