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

/// The lean `galley` includes neither the PostgreSQL store nor SAM templates (both need the whole
/// of Foundation, which would slow every one-shot invoke and worker start); `galley-full`, built
/// beside it, does.
enum FullHandOff {
    /// When `configuration` keeps the store in PostgreSQL and this binary cannot open it, replaces
    /// this process with `galley-full` running the same command line. Called as soon as the
    /// configuration is read, before any input is: the command starts over, whole, in the other binary.
    static func ensure(_ configuration: RuntimeConfiguration) throws {
        guard StoreOpener.postgresURL(configuration) != nil, !StoreOpener.supportsPostgres else { return }
        try run(because: "the store is in PostgreSQL (storage.postgres or GALLEY_STORAGE_URL)")
    }

    /// The same for a configuration file that is a SAM template.
    static func ensure(readable file: String) throws {
        guard SAMTemplate.isTemplate(file), !SAMTemplate.canRead else { return }
        try run(because: "\(file) is an AWS SAM template")
    }

    /// A note when `sibling` was built well before this binary: `swift run galley …` rebuilds only
    /// `galley`, and the command would run the functions of an older build.
    static func staleness(of sibling: String) -> String? {
        var own = stat()
        var other = stat()
        guard stat(EnvironmentLauncher.currentExecutable, &own) == 0, stat(sibling, &other) == 0 else { return nil }
        // Both links of one `swift build` finish within seconds of each other.
        guard own.st_mtim.tv_sec - other.st_mtim.tv_sec > 60 else { return nil }
        return "\(sibling) was built before this galley and may run older functions; run swift build to rebuild both"
    }

    private static func run(because reason: String) throws {
        let folder = URL(filePath: EnvironmentLauncher.currentExecutable).deletingLastPathComponent()
        let sibling = folder.appending(path: "galley-full").path
        guard access(sibling, X_OK) == 0 else {
            throw Failure("\(reason), which needs galley-full beside galley in \(folder.path); swift build builds both")
        }
        if let note = staleness(of: sibling) { StandardStreams.writeError("galley: \(note)") }
        let arguments = [sibling] + CommandLine.arguments.dropFirst()
        var pointers = arguments.map { strdup($0) }
        pointers.append(nil)
        execv(sibling, pointers)
        throw Failure("cannot run \(sibling): \(String(cString: strerror(errno)))")
    }
}
