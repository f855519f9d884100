import Galley
import GalleyStore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The contents of runtime.json: which functions are deployed, and how the host runs.
///
/// Decoding is strict: unknown fields, wrong types and out-of-range values are refused with a
/// ``ConfigurationError`` that names the file and the field.
public struct RuntimeConfiguration: Sendable, Equatable {
    public var server: Server
    public var storage: Storage
    public var queue: Queue
    /// The deployed functions by name.
    public var functions: [String: FunctionConfiguration]
    /// What a SAM template had that Galley could not map, one line each (`template.yaml:
    /// Resources.Fn.Properties.Layers: not mapped …`); empty for runtime.json.
    public var notes: [String] = []

    public init(
        server: Server = Server(),
        storage: Storage = Storage(),
        queue: Queue = Queue(),
        functions: [String: FunctionConfiguration]
    ) {
        self.server = server
        self.storage = storage
        self.queue = queue
        self.functions = functions
    }

    /// Where `galley serve` listens.
    public struct Server: Sendable, Equatable {
        /// Default `127.0.0.1`.
        public var host = "127.0.0.1"
        /// Default `9000`; `0` picks a free port.
        public var port = 9000
        /// Whether the Lambda Invoke API (`/2015-03-31/…`) is served. Default `true`; turn it off on
        /// a listener that faces the internet through a proxy, so that only routes are reachable.
        public var invokeAPI = true
        /// Peers whose `X-Forwarded-For` is believed. Default: loopback.
        public var trustedProxies = ["127.0.0.1", "::1"]
        /// Whether the host's own endpoints (`/_galley/health`, `/_galley/functions`,
        /// `/_galley/queue`) are served. Default: as `invokeAPI`, so that a listener with the Invoke
        /// API off shows nothing of the host unless asked.
        public var hostEndpoints: Bool?
        /// `hostEndpoints`, or `invokeAPI` when it is not set.
        public var servesHostEndpoints: Bool { hostEndpoints ?? invokeAPI }
        /// Seconds a client has to send a whole request, from its first byte to its last: a slow
        /// client holds its connection no longer. Default 30; 1 to 3600.
        public var requestTimeout: Double = 30
        /// Connections open at once; past it a new one gets a 503 and is closed. Default: half the
        /// process's descriptor limit, at most 10,000.
        public var maxConnections: Int?
        /// Whether `GetFunction` and `ListFunctions` show environment values. Default `false`: the
        /// names with `****` for values, since any caller may ask.
        public var exposeEnvironment = false
        /// Whether the host keeps metrics (`/_galley/metrics`) and the last lines of each function
        /// (`galley logs` without `--follow`). Default `true`; `false` saves their cost per invocation.
        public var metrics = true

        public init() {}
    }

    /// Where the key-value store keeps its file.
    public struct Storage: Sendable, Equatable {
        /// The folder of the store file, relative to runtime.json's folder. Default `.galley`.
        public var path = ".galley"
        /// `full` (default): an acknowledged write survives a power loss. `normal`: it survives
        /// a crash of any process, but the last writes may be lost on power loss.
        public var durability = Durability.full
        /// A PostgreSQL URL (`postgres://user@host:5432/database`): the store lives there, shared
        /// by every host that names it, instead of in the folder. `GALLEY_STORAGE_URL` in the
        /// environment takes its place, so that a password stays out of runtime.json.
        public var postgres: String?

        public enum Durability: String, Sendable, Equatable, Decodable, CaseIterable {
            case full
            case normal
        }

        public init() {}
    }

    /// The queue of asynchronous (`Event`) invocations, a file beside the store.
    public struct Queue: Sendable, Equatable {
        /// Events waiting at most; past it `Event` callers get 429. Default 100,000.
        public var maxEvents = 100_000
        /// Payload bytes waiting at most; past it `Event` callers get 429. Default 1 GiB.
        public var maxBytes = 1 << 30
        /// The share of each function's `concurrency` that queued events may use, so that they
        /// never starve synchronous callers. Default 0.5; at least one invocation.
        public var concurrencyShare = 0.5
        /// With the queue in PostgreSQL: how long, in seconds, a host holds the events it is
        /// delivering without renewing its lease (it renews every third of it). A host that stops
        /// answering for this long has its events delivered by another. Default 30.
        public var lease = 30.0

        public init() {}
    }
}

/// One deployed function.
public struct FunctionConfiguration: Sendable, Equatable {
    /// The name the handler is registered under in the catalog.
    public var handler: String
    /// Seconds before an invocation ends with `Sandbox.Timedout`. Default 3, as in Lambda; at most 900.
    public var timeout: Double = 3
    /// MB, reported in `REPORT` lines. Default 128; 128 to 10240.
    public var memory: Int = 128
    /// Environment variables, in `context.environment`.
    public var environment: [String: String] = [:]
    /// HTTP routes served by `galley serve`, e.g. `GET /hello/{name}`, or `{"route": "GET /v1/{id}",
    /// "payload": "1.0"}` for an API Gateway REST API's proxy event (payload 1.0).
    public var routes: [Route] = []
    /// How many invocations may run at once, each in an environment of its own. Default 100, so
    /// that a burst from a browser or a load balancer is not throttled; an idle Swift worker costs
    /// ~18 MB and idle ones are reaped after `idleTimeout`. Past it callers get 429.
    public var concurrency: Int = 100
    public var description: String = ""
    /// Store namespaces this function may use besides its own.
    public var store: [String] = []
    /// Where the handler runs. Default ``Isolation/process``.
    public var isolation = Isolation.process
    /// A program that speaks the Lambda Runtime API (e.g. `["python3", "-m", "awslambdaric",
    /// "app.handler"]`), run instead of a Swift handler; its last argument is `_HANDLER`.
    public var command: [String]?
    /// The working folder of `command` (and `LAMBDA_TASK_ROOT`), relative to runtime.json's folder.
    public var directory: String?
    /// Environments started with the host, before any invocation. Default 0; at most `concurrency`.
    public var warm: Int = 0
    /// Seconds an environment may sit idle before it is shut down. Default 300.
    public var idleTimeout: Double = 300
    /// How many times a failed `Event` invocation is tried again. Default 2; 0 to 2.
    public var retries = 2
    /// Seconds before the first retry of an `Event` invocation, doubling for the next. Default 60.
    public var retryDelay: Double = 60
    /// Seconds an `Event` invocation may wait in the queue before it is a dead letter. Default
    /// 21600 (6 hours); 1 to 21600.
    public var maxEventAge: Double = 21600
    /// A function sent the failure record of an `Event` invocation after its last attempt.
    public var onFailure: String?
    /// A function sent the success record of every `Event` invocation that succeeded.
    public var onSuccess: String?
    /// When the function runs on its own, e.g. `rate(5 minutes)` or `cron(0 12 * * ? *)` (UTC).
    public var schedule: Schedule?

    /// Where a function's handler runs.
    public enum Isolation: String, Sendable, Equatable, Decodable, CaseIterable {
        /// A worker process per environment (the default): a crash, a spin or an allocation past
        /// `memory` ends only that process.
        case process
        /// Inside the host process: fastest, for trusted functions only.
        case inline
    }

    public init(handler: String) {
        self.handler = handler
    }
}

extension RuntimeConfiguration {
    /// Reads and validates a runtime.json file, or an AWS SAM template (`.yaml`, `.yml`).
    public static func load(from path: String) throws(ConfigurationError) -> RuntimeConfiguration {
        if SAMTemplate.isTemplate(path) { return try SAMTemplate.load(from: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(filePath: path))
        } catch {
            throw ConfigurationError(file: path, path: "", message: "cannot read the file (\(Self.reason(error)))")
        }
        return try RuntimeConfiguration(json: data, file: path)
    }

    /// Validates runtime.json contents; `file` names it in errors.
    public init(json data: Data, file: String) throws(ConfigurationError) {
        do {
            try JSONSyntax.validateDocument(Array(data))
        } catch  where !error.path.isEmpty {
            throw ConfigurationError(
                file: file,
                path: error.path,
                message: "\(error.message) (line \(error.line), column \(error.column))"
            )
        } catch {
            throw ConfigurationError(file: file, path: "", message: "not valid JSON at \(error)")
        }
        do {
            self = try JSONDecoder().decode(RuntimeConfiguration.self, from: data)
        } catch let error as ConfigurationError {
            throw ConfigurationError(file: file, path: error.path, message: error.message)
        } catch let error as DecodingError {
            let (path, message) = error.pathAndMessage
            throw ConfigurationError(file: file, path: path, message: message)
        } catch {
            throw ConfigurationError(file: file, path: "", message: "\(error)")
        }
        try validate(file: file)
    }

    /// The fields changed from `running` that take effect only at a restart (`server.port`,
    /// `storage.path`, …); every other change takes effect at once on reload.
    public func restartOnlyChanges(from running: RuntimeConfiguration) -> [String] {
        var fields: [String] = []
        if server.host != running.server.host { fields.append("server.host") }
        if server.port != running.server.port { fields.append("server.port") }
        if server.requestTimeout != running.server.requestTimeout { fields.append("server.requestTimeout") }
        if server.maxConnections != running.server.maxConnections { fields.append("server.maxConnections") }
        if server.metrics != running.server.metrics { fields.append("server.metrics") }
        if storage.path != running.storage.path { fields.append("storage.path") }
        if storage.durability != running.storage.durability { fields.append("storage.durability") }
        if storage.postgres != running.storage.postgres { fields.append("storage.postgres") }
        return fields
    }

    /// Checks what decoding cannot: ranges, names, duplicate routes.
    func validate(file: String) throws(ConfigurationError) {
        func fail(_ path: String, _ message: String) -> ConfigurationError {
            ConfigurationError(file: file, path: path, message: message)
        }
        guard (0...65535).contains(server.port) else {
            throw fail("server.port", "must be between 0 and 65535, found \(server.port)")
        }
        guard server.requestTimeout >= 1, server.requestTimeout <= 3600 else {
            throw fail(
                "server.requestTimeout",
                "must be between 1 and 3600 seconds, found \(Self.format(server.requestTimeout))"
            )
        }
        if let maxConnections = server.maxConnections, !(1...1_000_000).contains(maxConnections) {
            throw fail("server.maxConnections", "must be between 1 and 1000000, found \(maxConnections)")
        }
        if functions.isEmpty { throw fail("functions", "no functions are deployed") }
        if !storage.path.hasPrefix("/"), storage.path.split(separator: "/").contains("..") {
            throw fail(
                "storage.path",
                "'\(storage.path)' climbs out of the project folder with '..'; write an absolute path to keep the store elsewhere"
            )
        }
        if let url = storage.postgres {
            do {
                _ = try PostgresURL(url)
            } catch {
                throw fail("storage.postgres", error.message)
            }
        }
        guard queue.maxEvents > 0 else {
            throw fail("queue.maxEvents", "must be at least 1, found \(queue.maxEvents)")
        }
        guard queue.maxBytes >= Dispatcher.maxAsyncPayload else {
            throw fail(
                "queue.maxBytes",
                "must be at least \(Dispatcher.maxAsyncPayload) (one event of the largest size), found \(queue.maxBytes)"
            )
        }
        guard queue.concurrencyShare > 0, queue.concurrencyShare <= 1 else {
            throw fail(
                "queue.concurrencyShare",
                "must be more than 0 and at most 1, found \(Self.format(queue.concurrencyShare))"
            )
        }
        guard queue.lease >= 1, queue.lease <= 3600 else {
            throw fail("queue.lease", "must be between 1 and 3600 seconds, found \(Self.format(queue.lease))")
        }
        var routeOwners: [String: (function: String, route: Route)] = [:]
        for (name, function) in functions.sorted(by: { $0.key < $1.key }) {
            let path = "functions.\(name)"
            guard FunctionName.isValid(name) else {
                throw fail(path, "'\(name)' is not a valid function name (letters, digits, '-' and '_', at most 64)")
            }
            guard function.timeout > 0 else {
                throw fail("\(path).timeout", "must be greater than 0 seconds, found \(Self.format(function.timeout))")
            }
            guard function.timeout <= 900 else {
                throw fail("\(path).timeout", "must be at most 900 seconds, found \(Self.format(function.timeout))")
            }
            guard (128...10240).contains(function.memory) else {
                throw fail("\(path).memory", "must be between 128 and 10240 MB, found \(function.memory)")
            }
            guard (1...1000).contains(function.concurrency) else {
                throw fail("\(path).concurrency", "must be between 1 and 1000, found \(function.concurrency)")
            }
            guard (0...function.concurrency).contains(function.warm) else {
                throw fail(
                    "\(path).warm",
                    "must be between 0 and concurrency (\(function.concurrency)), found \(function.warm)"
                )
            }
            guard function.idleTimeout > 0, function.idleTimeout <= 86400 else {
                throw fail(
                    "\(path).idleTimeout",
                    "must be between 0 and 86400 seconds, found \(Self.format(function.idleTimeout))"
                )
            }
            if let command = function.command {
                guard let program = command.first, !program.isEmpty else {
                    throw fail(
                        "\(path).command",
                        "must name a program, e.g. [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]"
                    )
                }
                guard function.isolation == .process else {
                    throw fail(
                        "\(path).isolation",
                        "a \"command\" always runs as a process; remove \"isolation\": \"inline\""
                    )
                }
            }
            guard (0...2).contains(function.retries) else {
                throw fail("\(path).retries", "must be 0, 1 or 2, as in Lambda, found \(function.retries)")
            }
            guard function.retryDelay > 0, function.retryDelay <= 21600 else {
                throw fail(
                    "\(path).retryDelay",
                    "must be more than 0 and at most 21600 seconds, found \(Self.format(function.retryDelay))"
                )
            }
            guard function.maxEventAge >= 1, function.maxEventAge <= 21600 else {
                throw fail(
                    "\(path).maxEventAge",
                    "must be between 1 and 21600 seconds, found \(Self.format(function.maxEventAge))"
                )
            }
            for (field, target) in [("onFailure", function.onFailure), ("onSuccess", function.onSuccess)] {
                guard let target else { continue }
                guard functions[target] != nil else {
                    throw fail("\(path).\(field)", "names '\(target)', which is not a deployed function")
                }
                guard target != name else {
                    throw fail("\(path).\(field)", "a function cannot be its own destination")
                }
            }
            for (index, namespace) in function.store.enumerated() where !FunctionName.isValid(namespace) {
                throw fail("\(path).store[\(index)]", "'\(namespace)' is not a valid namespace name")
            }
            for (index, route) in function.routes.enumerated() {
                if let owner = routeOwners[route.shape] {
                    throw fail(
                        "\(path).routes[\(index)]",
                        "'\(route)' is already the route '\(owner.route)' of function '\(owner.function)'"
                    )
                }
                routeOwners[route.shape] = (name, route)
            }
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// A short reason for a file that could not be read: `no such file`, `permission denied`, ….
    package static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError {
            switch error.code {
            case .fileReadNoSuchFile, .fileNoSuchFile: return "no such file"
            case .fileReadNoPermission: return "permission denied"
            case .fileReadCorruptFile, .fileReadInapplicableStringEncoding: return "unreadable contents"
            default: break
            }
        }
        return "\(error)"
    }
}

enum FunctionName {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_")
            }
    }
}

// MARK: - Strict decoding

extension RuntimeConfiguration: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case server, storage, queue, functions
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        server = try container.decodeIfPresent(Server.self, forKey: .server) ?? Server()
        storage = try container.decodeIfPresent(Storage.self, forKey: .storage) ?? Storage()
        queue = try container.decodeIfPresent(Queue.self, forKey: .queue) ?? Queue()
        guard container.contains(.functions) else {
            throw DecodingError.keyNotFound(
                CodingKeys.functions,
                .init(codingPath: [], debugDescription: "runtime.json needs a 'functions' object")
            )
        }
        functions = try container.decode([String: FunctionConfiguration].self, forKey: .functions)
    }
}

extension RuntimeConfiguration.Server: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, invokeAPI, trustedProxies, exposeEnvironment, hostEndpoints, requestTimeout, maxConnections
        case metrics
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        host = try container.decodeIfPresent(String.self, forKey: .host) ?? host
        port = try container.decodeWholeNumber(forKey: .port) ?? port
        invokeAPI = try container.decodeIfPresent(Bool.self, forKey: .invokeAPI) ?? invokeAPI
        trustedProxies = try container.decodeIfPresent([String].self, forKey: .trustedProxies) ?? trustedProxies
        exposeEnvironment = try container.decodeIfPresent(Bool.self, forKey: .exposeEnvironment) ?? exposeEnvironment
        hostEndpoints = try container.decodeIfPresent(Bool.self, forKey: .hostEndpoints)
        requestTimeout = try container.decodeIfPresent(Double.self, forKey: .requestTimeout) ?? requestTimeout
        maxConnections = try container.decodeWholeNumber(forKey: .maxConnections)
        metrics = try container.decodeIfPresent(Bool.self, forKey: .metrics) ?? metrics
    }
}

extension RuntimeConfiguration.Storage: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case path, durability, postgres
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decodeIfPresent(String.self, forKey: .path) ?? path
        durability = try container.decodeChoice(Durability.self, forKey: .durability) ?? durability
        postgres = try container.decodeIfPresent(String.self, forKey: .postgres)
    }
}

extension RuntimeConfiguration.Queue: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxEvents, maxBytes, concurrencyShare, lease
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxEvents = try container.decodeWholeNumber(forKey: .maxEvents) ?? maxEvents
        maxBytes = try container.decodeWholeNumber(forKey: .maxBytes) ?? maxBytes
        concurrencyShare = try container.decodeIfPresent(Double.self, forKey: .concurrencyShare) ?? concurrencyShare
        lease = try container.decodeIfPresent(Double.self, forKey: .lease) ?? lease
    }
}

extension FunctionConfiguration: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case handler, timeout, memory, environment, routes, concurrency, description, store
        case isolation, command, directory, warm, idleTimeout
        case retries, retryDelay, maxEventAge, onFailure, onSuccess, schedule
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        command = try container.decodeIfPresent([String].self, forKey: .command)
        directory = try container.decodeIfPresent(String.self, forKey: .directory)
        guard container.contains(.handler) || command != nil else {
            throw DecodingError.keyNotFound(
                CodingKeys.handler,
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "every function needs a \"handler\" (a Swift handler) or a \"command\""
                )
            )
        }
        handler = try container.decodeIfPresent(String.self, forKey: .handler) ?? command?.last ?? ""
        isolation = try container.decodeChoice(Isolation.self, forKey: .isolation) ?? isolation
        warm = try container.decodeWholeNumber(forKey: .warm) ?? warm
        idleTimeout = try container.decodeIfPresent(Double.self, forKey: .idleTimeout) ?? idleTimeout
        timeout = try container.decodeIfPresent(Double.self, forKey: .timeout) ?? timeout
        memory = try container.decodeWholeNumber(forKey: .memory) ?? memory
        environment = try container.decodeIfPresent([String: String].self, forKey: .environment) ?? environment
        concurrency = try container.decodeWholeNumber(forKey: .concurrency) ?? concurrency
        description = try container.decodeIfPresent(String.self, forKey: .description) ?? description
        store = try container.decodeIfPresent([String].self, forKey: .store) ?? store
        retries = try container.decodeWholeNumber(forKey: .retries) ?? retries
        retryDelay = try container.decodeIfPresent(Double.self, forKey: .retryDelay) ?? retryDelay
        maxEventAge = try container.decodeIfPresent(Double.self, forKey: .maxEventAge) ?? maxEventAge
        onFailure = try container.decodeIfPresent(String.self, forKey: .onFailure)
        onSuccess = try container.decodeIfPresent(String.self, forKey: .onSuccess)
        if let text = try container.decodeIfPresent(String.self, forKey: .schedule) {
            do {
                schedule = try Schedule(parsing: text)
            } catch {
                throw ConfigurationError(
                    file: "",
                    path: (decoder.codingPath.map(\.stringValue) + ["schedule"]).joined(separator: "."),
                    message: error.message
                )
            }
        }
        let routeEntries = try container.decodeIfPresent([RouteEntry].self, forKey: .routes) ?? []
        routes = []
        for (index, entry) in routeEntries.enumerated() {
            let path = (decoder.codingPath.map(\.stringValue) + ["routes"]).joined(separator: ".") + "[\(index)]"
            do {
                var route = try Route(parsing: entry.route)
                if let payload = entry.payload {
                    guard let version = Route.PayloadVersion(rawValue: payload) else {
                        throw ConfigurationError(
                            file: "",
                            path: path + ".payload",
                            message: "must be \"2.0\" (HTTP API, the default) or \"1.0\" (REST API), found '\(payload)'"
                        )
                    }
                    route.payload = version
                }
                routes.append(route)
            } catch let error as RouteSyntaxError {
                throw ConfigurationError(file: "", path: path, message: error.message)
            }
        }
    }
}

struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension Decoder {
    /// Refuses fields the type does not know, naming the first one and listing the known ones.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let known = Keys.allCases.map(\.stringValue)
        for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue })
        where !known.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: codingPath + [key],
                    debugDescription: "unknown field; known fields are \(known.joined(separator: ", "))"
                )
            )
        }
    }
}

extension KeyedDecodingContainer {
    /// One of a fixed set of strings, e.g. `"full"` or `"normal"`; anything else is refused naming them.
    func decodeChoice<Choice: RawRepresentable & CaseIterable>(
        _ type: Choice.Type,
        forKey key: Key
    ) throws -> Choice? where Choice.RawValue == String {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            let names = Choice.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
            throw DecodingError.dataCorruptedError(
                forKey: key,
                in: self,
                debugDescription: "must be \(names), found \"\(text)\""
            )
        }
        return choice
    }
}

extension KeyedDecodingContainer {
    /// An integer field: `128.5` or `1e20` is refused naming the field (Foundation's decoder would
    /// only say the data is not valid JSON).
    func decodeWholeNumber(forKey key: Key) throws -> Int? {
        guard let number = try decodeIfPresent(Double.self, forKey: key) else { return nil }
        guard let whole = Int(exactly: number) else {
            throw DecodingError.dataCorruptedError(
                forKey: key,
                in: self,
                debugDescription: "must be a whole number, found \(number)"
            )
        }
        return whole
    }
}

extension DecodingError {
    /// The dotted path of the field and a message, split for ``ConfigurationError``.
    var pathAndMessage: (String, String) {
        let summary = self.summary
        if let range = summary.firstRange(of: ": "), !summary[..<range.lowerBound].contains(" ") {
            return (String(summary[..<range.lowerBound]), String(summary[range.upperBound...]))
        }
        return ("", summary)
    }
}

/// A route in runtime.json: `"GET /hello/{name}"`, or `{"route": "GET /hello/{name}", "payload": "1.0"}`.
struct RouteEntry: Decodable {
    var route: String
    var payload: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case route, payload
    }

    init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            route = text
            return
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        route = try container.decode(String.self, forKey: .route)
        payload = try container.decodeIfPresent(String.self, forKey: .payload)
    }
}
