import GalleyCLI

// The lean binary: everything but the PostgreSQL store, which would slow every `galley invoke` and
// every worker's start (postgres-nio brings in the whole of Foundation); a runtime.json that names
// PostgreSQL storage hands the command to `galley-postgres`, beside this binary.
await GalleyCommand.run()
