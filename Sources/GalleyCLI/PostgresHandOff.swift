import GalleyHost

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The lean `galley` does not include the PostgreSQL store; `galley-postgres`, built beside it, does.
enum PostgresHandOff {
    /// When `configuration` keeps the store in PostgreSQL and this binary cannot open it, replaces
    /// this process with `galley-postgres` running the same command line. Called as soon as the
    /// configuration is read, before any input is: the command starts over, whole, in the other binary.
    static func ensure(_ configuration: RuntimeConfiguration) throws {
        guard StoreOpener.postgresURL(configuration) != nil, !StoreOpener.supportsPostgres else { return }
        let folder = URL(filePath: EnvironmentLauncher.currentExecutable).deletingLastPathComponent()
        let sibling = folder.appending(path: "galley-postgres").path
        guard access(sibling, X_OK) == 0 else {
            throw Failure(
                "the store is in PostgreSQL (storage.postgres or GALLEY_STORAGE_URL), which needs galley-postgres "
                    + "beside galley in \(folder.path); swift build builds both"
            )
        }
        let arguments = [sibling] + CommandLine.arguments.dropFirst()
        var pointers = arguments.map { strdup($0) }
        pointers.append(nil)
        execv(sibling, pointers)
        throw Failure("cannot run \(sibling): \(String(cString: strerror(errno)))")
    }
}
