import Galley

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The functions of one runtime.json, each bound to its handler in the catalog.
///
/// Built once per configuration; `galley serve` builds a new one on SIGHUP.
public struct Deployment: Sendable {
    /// One deployed function.
    public struct Function: Sendable {
        public let name: String
        public let configuration: FunctionConfiguration
        public let arn: String
        /// The Swift handler, or `nil` for a `command` function.
        let entry: Catalog.Entry?
        let pool: EnvironmentPool
    }

    public let configuration: RuntimeConfiguration
    public let functions: [String: Function]
    /// Every function's HTTP routes.
    public let routes: RouteTable
    /// What no worker process may see of the application: its folder, runtime.json, the storage
    /// folder, every function's folder but its own.
    let privatePaths: PrivatePaths

    /// Binds every function of `configuration` to its handler in `catalog`.
    ///
    /// - Throws: ``ConfigurationError`` naming the function whose `handler` is not in the catalog,
    ///   with the list of registered handlers.
    ///   - previous: A deployment being replaced: functions whose configuration is unchanged keep
    ///     their warm environments and their count of running invocations.
    public init(
        configuration: RuntimeConfiguration,
        catalog: Catalog,
        file: String,
        previous: Deployment? = nil
    ) throws(ConfigurationError) {
        // This run's --env-vars, over runtime.json's environment (a reload's deployment too).
        let configuration = try EnvironmentOverrides.current.withLock { $0 }?.apply(to: configuration) ?? configuration
        var seen: Set<String> = []
        for entry in catalog.entries where !seen.insert(entry.name).inserted {
            throw ConfigurationError(
                file: "Functions/Catalog.swift",
                path: "",
                message: "the handler name '\(entry.name)' is registered twice"
            )
        }
        var functions: [String: Function] = [:]
        for (name, function) in configuration.functions.sorted(by: { $0.key < $1.key }) {
            let entry = catalog[function.handler]
            if function.command == nil, entry == nil {
                let known = catalog.names.isEmpty ? "none" : catalog.names.joined(separator: ", ")
                throw ConfigurationError(
                    file: file,
                    path: "functions.\(name).handler",
                    message: "no handler named '\(function.handler)' is registered; registered handlers: \(known)"
                )
            }
            // A missing folder would otherwise surface as the interpreter "not found" at the first call.
            if function.command != nil, let folder = function.directory {
                let base = file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
                let path = folder.hasPrefix("/") ? folder : base + "/" + folder
                var info = stat()
                if stat(path, &info) != 0 || info.st_mode & S_IFMT != S_IFDIR {
                    throw ConfigurationError(
                        file: file,
                        path: "functions.\(name).directory",
                        message: "no such folder: \(path)"
                    )
                }
            }
            if let kept = previous?.functions[name], kept.configuration == function {
                functions[name] = kept
                continue
            }
            functions[name] = Function(
                name: name,
                configuration: function,
                arn: ARN.function(name),
                entry: entry,
                pool: EnvironmentPool(limit: function.concurrency)
            )
        }
        self.configuration = configuration
        self.functions = functions
        self.routes = RouteTable(configuration: configuration)
        let base = Sandbox.absolute(file.lastIndex(of: "/").map { String(file[..<$0]) } ?? ".")
        let inBase = { (path: String) in Sandbox.absolute(path.hasPrefix("/") ? path : base + "/" + path) }
        let storage = inBase(configuration.storage.path)
        self.privatePaths = PrivatePaths(
            application: base,
            covered: [base, storage],
            hidden: [inBase(file), storage] + configuration.functions.values.compactMap { $0.directory.map(inBase) }
        )
    }
}

/// The ARNs Galley reports; the account and region are fixed, as in the Runtime Interface Emulator.
public enum ARN {
    public static let region = "us-east-1"
    public static let account = "123456789012"

    public static func function(_ name: String, qualifier: String? = nil) -> String {
        let arn = "arn:aws:lambda:\(region):\(account):function:\(name)"
        return qualifier.map { "\(arn):\($0)" } ?? arn
    }
}
