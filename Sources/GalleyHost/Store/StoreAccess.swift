import Galley
import GalleyStore
import Logging
import Synchronization
import Tracing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Opens the store on first use, so that functions which never touch it cost nothing, and keeps
/// it open. A failed open is not remembered: the next use tries again.
public final class StoreOpener: Sendable {
    private let opened = Mutex<(any Store)?>(nil)
    private let open: @Sendable () throws -> any Store

    public init(open: @escaping @Sendable () throws -> any Store) {
        self.open = open
    }

    /// The store `configuration` names: the PostgreSQL database of `GALLEY_STORAGE_URL` or
    /// `storage.postgres`, else the SQLite file in `storage.path`.
    public static func configured(_ configuration: RuntimeConfiguration, configurationFile: String) -> StoreOpener {
        guard let url = postgresURL(configuration) else {
            return sqlite(configuration, configurationFile: configurationFile)
        }
        return StoreOpener {
            guard let open = postgresFactory.withLock({ $0 }) else {
                throw StoreError(
                    .unavailable,
                    "the store is in PostgreSQL, which this galley binary does not include: run galley-full"
                )
            }
            return try open(url)
        }
    }

    private static let postgresFactory = Mutex<(@Sendable (String) throws -> any Store)?>(nil)

    /// Makes `open` the way to a PostgreSQL store (`galley-full` does, first thing).
    public static func registerPostgres(_ open: @escaping @Sendable (String) throws -> any Store) {
        postgresFactory.withLock { $0 = open }
    }

    /// Whether this binary can open a PostgreSQL store.
    public static var supportsPostgres: Bool { postgresFactory.withLock { $0 != nil } }

    /// The PostgreSQL URL the store is at, if it is in PostgreSQL: `GALLEY_STORAGE_URL`, else
    /// runtime.json's `storage.postgres`.
    public static func postgresURL(_ configuration: RuntimeConfiguration) -> String? {
        // One variable, not the whole environment: this runs in every `galley invoke`'s start.
        if let url = getenv("GALLEY_STORAGE_URL").map({ String(cString: $0) }), !url.isEmpty { return url }
        return configuration.storage.postgres
    }

    /// The SQLite file of `configuration`: `<storage.path>/store.sqlite`, relative to the folder of
    /// the configuration file.
    public static func sqlite(_ configuration: RuntimeConfiguration, configurationFile: String) -> StoreOpener {
        sqlite(
            file: storeFile(configuration, configurationFile: configurationFile),
            durability: configuration.storage.durability
        )
    }

    /// The SQLite file at `file`.
    public static func sqlite(file: String, durability: RuntimeConfiguration.Storage.Durability) -> StoreOpener {
        let durability: SQLiteStore.Durability = durability == .normal ? .normal : .full
        return StoreOpener { try SQLiteStore(path: file, durability: durability) }
    }

    /// Where the store file of `configuration` lives.
    public static func storeFile(_ configuration: RuntimeConfiguration, configurationFile: String) -> String {
        let folder = configuration.storage.path
        if folder.hasPrefix("/") { return folder + "/store.sqlite" }
        let base = URL(filePath: configurationFile).deletingLastPathComponent()
        return base.appending(path: folder).appending(path: "store.sqlite").path
    }

    /// The store, opened now if it is not yet.
    public func store() throws -> any Store {
        try opened.withLock { opened in
            if let store = opened { return store }
            let store = try open()
            opened = store
            return store
        }
    }

    /// The store if it has been opened.
    public var openedStore: (any Store)? { opened.withLock { $0 } }
}

/// What one function may touch: its own namespace (named after it) and those runtime.json grants
/// it in `store`.
public struct StoreAccess: StoreProvider {
    public let function: String
    public let granted: [String]
    let opener: StoreOpener
    /// Where each call is counted and timed; `nil`: not counted (spans are made all the same).
    let metrics: HostMetrics?
    let tracer: (any Tracer)?

    public init(
        function: String,
        granted: [String],
        opener: StoreOpener,
        metrics: HostMetrics? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.function = function
        self.granted = granted
        self.opener = opener
        self.metrics = metrics
        self.tracer = tracer
    }

    /// Access for each function of a deployment, through one opener.
    public static func provider(
        _ opener: StoreOpener,
        metrics: HostMetrics? = nil,
        tracer: (any Tracer)? = nil
    ) -> @Sendable (Deployment.Function) -> any StoreProvider {
        { function in
            StoreAccess(
                function: function.name,
                granted: function.configuration.store,
                opener: opener,
                metrics: metrics,
                tracer: tracer
            )
        }
    }

    public func store(namespace: String) throws -> any KeyValueStore {
        guard namespace == function || granted.contains(namespace) else {
            throw StoreError(
                .accessDenied,
                "function '\(function)' may not use the store namespace '\(namespace)'; "
                    + "grant it in runtime.json: functions.\(function).store"
            )
        }
        return ObservedStore(
            base: try opener.store().namespace(namespace),
            namespace: namespace,
            metrics: metrics,
            tracer: tracer
        )
    }

    public func settle() async {
        await opener.openedStore?.settle()
    }
}
