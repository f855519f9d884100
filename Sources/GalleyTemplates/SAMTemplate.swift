import Galley
import GalleyHost
import Yams

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension SAMTemplate {
    /// Makes this process read templates: `galley-full` calls it first thing.
    public static func registerReader() {
        register { (path) throws(ConfigurationError) in try read(from: path) }
    }

    /// Reads the template at `path` as a deployment.
    public static func read(from path: String) throws(ConfigurationError) -> RuntimeConfiguration {
        let text: String
        do {
            text = try String(decoding: Data(contentsOf: URL(filePath: path)), as: UTF8.self)
        } catch {
            throw ConfigurationError(
                file: path,
                path: "",
                message: "cannot read the file (\(RuntimeConfiguration.reason(error)))"
            )
        }
        return try translate(text, file: path, overrides: parameterOverrides.withLock { $0 })
    }

    /// Translates template text; `file` names it in errors and notes.
    public static func translate(
        _ text: String,
        file: String,
        overrides: [String: String] = [:]
    ) throws(ConfigurationError) -> RuntimeConfiguration {
        let root: Value
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationError(file: file, path: "", message: "the template is empty")
            }
            root = Value(node)
        } catch let error as ConfigurationError {
            throw error
        } catch let error as YamlError {
            throw ConfigurationError(file: file, path: "", message: "not valid YAML: \(Self.describe(error))")
        } catch {
            throw ConfigurationError(file: file, path: "", message: "not valid YAML: \(error)")
        }
        var translator = try Translator(root: root, file: file, overrides: overrides)
        let json = try translator.runtimeJSON()
        var configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration(json: try JSONEncoder().encode(json), file: file)
        } catch let error as ConfigurationError {
            throw ConfigurationError(file: file, path: translator.templatePath(of: error.path), message: error.message)
        } catch {
            throw ConfigurationError(file: file, path: "", message: "\(error)")
        }
        configuration.notes = translator.notes.map { "\(file): \($0)" }
        return configuration
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            "\(problem) (line \(mark.line), column \(mark.column))"
        default:
            "\(error)"
        }
    }

    /// A template value: YAML's scalars stay text (CloudFormation reads `10` and `"10"` alike);
    /// a short-form intrinsic (`!Ref x`) becomes its long form (`{"Ref": "x"}`).
    indirect enum Value: Equatable {
        case text(String)
        case list([Value])
        case map([(String, Value)])
        case null

        static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.text(let a), .text(let b)): a == b
            case (.list(let a), .list(let b)): a == b
            case (.map(let a), .map(let b)): a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
            case (.null, .null): true
            default: false
            }
        }

        init(_ node: Node) {
            var value: Value
            switch node {
            case .scalar(let scalar):
                value = node.tag.description == "tag:yaml.org,2002:null" ? .null : .text(scalar.string)
            case .sequence(let sequence):
                value = .list(sequence.map(Value.init))
            case .mapping(let mapping):
                value = .map(mapping.map { pair in (pair.key.string ?? "", Value(pair.value)) })
            case .alias:
                value = .null
            }
            let tag = node.tag.description
            if tag.hasPrefix("!") {
                let name = String(tag.dropFirst())
                if name == "Ref" || name == "Condition" {
                    value = .map([(name, value)])
                } else if name == "GetAtt", case .text(let dotted) = value, let dot = dotted.firstIndex(of: ".") {
                    value = .map([
                        (
                            "Fn::GetAtt",
                            .list([.text(String(dotted[..<dot])), .text(String(dotted[dotted.index(after: dot)...]))])
                        )
                    ])
                } else {
                    value = .map([("Fn::\(name)", value)])
                }
            }
            self = value
        }

        subscript(key: String) -> Value? {
            guard case .map(let pairs) = self else { return nil }
            return pairs.first { $0.0 == key }?.1
        }

        var text: String? {
            if case .text(let text) = self { return text }
            return nil
        }

        var pairs: [(String, Value)] {
            if case .map(let pairs) = self { return pairs }
            return []
        }
    }

    /// Why a value did not resolve locally.
    struct Unresolved: Error {
        var reason: String
    }

    struct Translator {
        let root: Value
        let file: String
        var parameters: [String: Value] = [:]
        var conditions: [String: Value] = [:]
        /// Function logical id → deployed name.
        var functionNames: [String: String] = [:]
        var notes: [String] = []
        /// Deployed name → the function's logical id and the properties it took from
        /// `Globals.Function`: where a runtime.json field's value came from in the template.
        var sources: [String: (id: String, inherited: Set<String>)] = [:]

        init(root: Value, file: String, overrides: [String: String]) throws(ConfigurationError) {
            self.root = root
            self.file = file
            guard case .map = root else {
                throw ConfigurationError(file: file, path: "", message: "a template is a mapping with Resources")
            }
            guard case .map(let resources)? = root["Resources"], !resources.isEmpty else {
                throw ConfigurationError(file: file, path: "Resources", message: "the template has no Resources")
            }
            let transform = root["Transform"]
            let serverless =
                transform?.text == "AWS::Serverless-2016-10-31"
                || {
                    if case .list(let items)? = transform {
                        return items.contains(.text("AWS::Serverless-2016-10-31"))
                    } else {
                        return false
                    }
                }()
            if !serverless {
                notes.append("Transform: not AWS::Serverless-2016-10-31; read as a SAM template anyway")
            }
            let declared = Set((root["Parameters"]?.pairs ?? []).map(\.0))
            for name in overrides.keys.sorted() where !declared.contains(name) {
                throw ConfigurationError(
                    file: file,
                    path: "Parameters",
                    message: "--parameter-overrides sets '\(name)', which the template does not declare"
                        + (declared.isEmpty ? "" : " (it declares \(declared.sorted().joined(separator: ", ")))")
                )
            }
            for (name, declaration) in root["Parameters"]?.pairs ?? [] {
                let path = "Parameters.\(name)"
                if let value = overrides[name] {
                    parameters[name] = .text(value)
                } else if let fallback = declaration["Default"] {
                    parameters[name] = fallback
                } else {
                    throw ConfigurationError(
                        file: file,
                        path: path,
                        message: "has no Default; give it a value with --parameter-overrides \(name)=VALUE"
                    )
                }
                if case .list(let allowed)? = declaration["AllowedValues"], let value = parameters[name],
                    !allowed.contains(value)
                {
                    let choices = allowed.compactMap(\.text).joined(separator: ", ")
                    throw ConfigurationError(
                        file: file,
                        path: path,
                        message: "'\(value.text ?? "")' is not one of its AllowedValues (\(choices))"
                    )
                }
            }
            for (name, condition) in root["Conditions"]?.pairs ?? [] { conditions[name] = condition }
            for (id, resource) in resources where resource["Type"]?.text == "AWS::Serverless::Function" {
                let explicit = resource["Properties"]?["FunctionName"]
                var name = id
                if let explicit {
                    // Resolved without other functions' names: a function's name cannot depend on another's.
                    if case .text(let resolved)? = try? resolve(explicit) { name = resolved }
                }
                functionNames[id] = name
            }
        }

        // MARK: - Functions

        mutating func runtimeJSON() throws(ConfigurationError) -> JSONValue {
            var functions: [String: JSONValue] = [:]
            let globals = root["Globals"]?["Function"]?.pairs ?? []
            for (key, _) in root["Globals"]?.pairs ?? [] where key != "Function" {
                notes.append("Globals.\(key): not mapped (only Globals.Function applies locally)")
            }
            for (id, resource) in root["Resources"]?.pairs ?? [] {
                let type = resource["Type"]?.text ?? "(no Type)"
                guard type == "AWS::Serverless::Function" else {
                    notes.append("Resources.\(id): \(type) has no local counterpart; skipped")
                    continue
                }
                var properties = globals
                let own = resource["Properties"]?.pairs ?? []
                let inherited = Set(globals.map(\.0)).subtracting(own.map(\.0))
                for (key, value) in own {
                    if let index = properties.firstIndex(where: { $0.0 == key }) {
                        properties[index].1 = Self.merge(properties[index].1, value, key: key)
                    } else {
                        properties.append((key, value))
                    }
                }
                let name = functionNames[id] ?? id
                sources[name] = (id, inherited)
                if let function = try function(id: id, properties: properties) {
                    functions[name] = .object(function)
                }
            }
            guard !functions.isEmpty else {
                throw ConfigurationError(
                    file: file,
                    path: "Resources",
                    message: "no AWS::Serverless::Function could be served (see the lines above)"
                )
            }
            return ["functions": .object(functions)]
        }

        /// `Globals` under a function's own: maps of environment variables merge, anything else is replaced.
        static func merge(_ global: Value, _ local: Value, key: String) -> Value {
            guard key == "Environment", case .map = global, case .map = local,
                case .map(let globalVariables)? = global["Variables"],
                case .map(let localVariables)? = local["Variables"]
            else { return local }
            var merged = globalVariables
            for (name, value) in localVariables {
                if let index = merged.firstIndex(where: { $0.0 == name }) {
                    merged[index].1 = value
                } else {
                    merged.append((name, value))
                }
            }
            return .map([("Variables", .map(merged))])
        }

        /// Properties with no local meaning, named but not an obstacle.
        static let ignored: Set<String> = [
            "Policies", "Role", "Architectures", "Layers", "Tracing", "VpcConfig", "Tags", "AutoPublishAlias",
            "DeploymentPreference", "ProvisionedConcurrencyConfig", "KmsKeyArn", "PermissionsBoundary",
            "FunctionUrlConfig", "EphemeralStorage", "SnapStart", "LoggingConfig", "RuntimeManagementConfig",
            "CodeSigningConfigArn", "FileSystemConfigs", "ImageConfig", "ImageUri", "InlineCode",
            "AssumeRolePolicyDocument",
            "RolePath", "AutoPublishCodeSha256", "VersionDescription", "RecursiveLoop", "SourceKMSKeyArn",
        ]

        mutating func function(
            id: String,
            properties: [(String, Value)]
        ) throws(ConfigurationError) -> [String: JSONValue]? {
            let base = "Resources.\(id).Properties"
            var function: [String: JSONValue] = [:]
            var values: [String: Value] = [:]
            for (key, value) in properties {
                values[key] = resolveLeniently(value, at: "\(base).\(key)")
            }
            if values["PackageType"]?.text == "Image" {
                notes.append("\(base).PackageType: Image functions cannot run locally without Docker; skipped")
                return nil
            }
            guard let handler = values["Handler"]?.text, !handler.isEmpty else {
                notes.append("\(base).Handler: missing; the function is skipped")
                return nil
            }
            // A Swift function's name in the catalog; a command function's is informational (its
            // handler is the command's last argument).
            function["handler"] = .string(handler)
            let runtime = values["Runtime"]?.text ?? ""
            if runtime.hasPrefix("python3") {
                function["command"] = ["python3", "-m", "awslambdaric", .string(handler)]
                if let codeURI = values["CodeUri"] {
                    if let folder = codeURI.text {
                        function["directory"] = .string(folder)
                    } else {
                        notes.append(
                            "\(base).CodeUri: an S3 location cannot be read locally; the template's folder is used"
                        )
                    }
                }
            } else if !runtime.hasPrefix("provided") {
                notes.append(
                    "\(base).Runtime: '\(runtime.isEmpty ? "(none)" : runtime)' is not served locally (python3.x and provided.al2/al2023 are); the function is skipped"
                )
                return nil
            }
            if let description = values["Description"]?.text { function["description"] = .string(description) }
            if let timeout = values["Timeout"] { function["timeout"] = try number(timeout, at: "\(base).Timeout") }
            if let memory = values["MemorySize"] { function["memory"] = try number(memory, at: "\(base).MemorySize") }
            if let reserved = values["ReservedConcurrentExecutions"] {
                function["concurrency"] = try number(reserved, at: "\(base).ReservedConcurrentExecutions")
            }
            if let environment = values["Environment"] {
                var variables: [String: JSONValue] = [:]
                for (name, value) in environment["Variables"]?.pairs ?? [] {
                    guard let text = value.text else {
                        notes.append("\(base).Environment.Variables.\(name): not a single value; left out")
                        continue
                    }
                    variables[name] = .string(text)
                }
                function["environment"] = .object(variables)
            }
            var routes: [JSONValue] = []
            for (name, event) in values["Events"]?.pairs ?? [] {
                try self.event(name, event, at: "\(base).Events.\(name)", routes: &routes, function: &function)
            }
            if !routes.isEmpty { function["routes"] = .array(routes) }
            if let queue = values["DeadLetterQueue"] {
                let type = queue["Type"]?.text ?? "?"
                notes.append(
                    "\(base).DeadLetterQueue: failed Event invocations are kept as Galley's dead letters (galley dlq list), not sent to the \(type) target"
                )
            }
            if let config = values["EventInvokeConfig"] {
                try eventInvokeConfig(config, at: "\(base).EventInvokeConfig", function: &function)
            }
            for (key, _) in properties.sorted(by: { $0.0 < $1.0 }) where Self.ignored.contains(key) {
                notes.append("\(base).\(key): not mapped (no local meaning); ignored")
            }
            let known: Set<String> = [
                "Handler", "Runtime", "CodeUri", "Description", "Timeout", "MemorySize", "ReservedConcurrentExecutions",
                "Environment", "Events", "DeadLetterQueue", "EventInvokeConfig", "FunctionName", "PackageType",
            ]
            for (key, _) in properties where !known.contains(key) && !Self.ignored.contains(key) {
                notes.append("\(base).\(key): not a property Galley knows; ignored")
            }
            return function
        }

        mutating func event(
            _ name: String,
            _ event: Value,
            at path: String,
            routes: inout [JSONValue],
            function: inout [String: JSONValue]
        ) throws(ConfigurationError) {
            let type = event["Type"]?.text ?? "(no Type)"
            let properties = event["Properties"]
            switch type {
            case "HttpApi", "Api":
                guard let route = properties?["Path"]?.text else {
                    if type == "HttpApi" {
                        routes.append("ANY /{proxy+}")  // An HttpApi event without a path is the API's default route.
                    } else {
                        notes.append("\(path).Properties.Path: missing; no route")
                    }
                    return
                }
                var method = properties?["Method"]?.text?.uppercased() ?? "ANY"
                if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" { method = "ANY" }
                // A REST API's function receives the proxy event of payload 1.0, as on AWS.
                routes.append(
                    type == "Api"
                        ? ["route": .string("\(method) \(route)"), "payload": "1.0"] : .string("\(method) \(route)")
                )
                for key in ["Auth", "ApiId", "RestApiId", "RequestParameters", "RequestModel"]
                where properties?[key] != nil {
                    notes.append("\(path).Properties.\(key): not mapped; ignored")
                }
            case "Schedule", "ScheduleV2":
                let expression = properties?["Schedule"]?.text ?? properties?["ScheduleExpression"]?.text
                guard let expression else {
                    notes.append("\(path).Properties: no Schedule expression; no schedule")
                    return
                }
                if properties?["Enabled"]?.text == "false" || properties?["State"]?.text == "DISABLED" {
                    notes.append("\(path): disabled; no schedule")
                    return
                }
                guard function["schedule"] == nil else {
                    notes.append("\(path): a function has one schedule in Galley; this second one is ignored")
                    return
                }
                function["schedule"] = .string(expression)
                for key in ["Input", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "RetryPolicy"]
                where properties?[key] != nil {
                    notes.append("\(path).Properties.\(key): not mapped; ignored")
                }
            default:
                let source = Self.sampleSource[type].map { " (try: galley events \($0) | galley invoke …)" } ?? ""
                notes.append(
                    "\(path): an event source of type \(type) has no local counterpart; not connected\(source)"
                )
            }
        }

        static let sampleSource = [
            "S3": "s3", "SQS": "sqs", "SNS": "sns", "DynamoDB": "dynamodb", "Kinesis": "kinesis",
            "EventBridgeRule": "eventbridge", "CloudWatchEvent": "eventbridge", "CloudWatchLogs": "cloudwatch-logs",
            "Cognito": "cognito",
        ]

        mutating func eventInvokeConfig(
            _ config: Value,
            at path: String,
            function: inout [String: JSONValue]
        ) throws(ConfigurationError) {
            if let retries = config["MaximumRetryAttempts"] {
                function["retries"] = try number(retries, at: "\(path).MaximumRetryAttempts")
            }
            if let age = config["MaximumEventAgeInSeconds"] {
                function["maxEventAge"] = try number(age, at: "\(path).MaximumEventAgeInSeconds")
            }
            for (field, key) in [("onSuccess", "OnSuccess"), ("onFailure", "OnFailure")] {
                guard let destination = config["DestinationConfig"]?[key] else { continue }
                let type = destination["Type"]?.text ?? "?"
                guard type == "Lambda", let arn = destination["Destination"]?.text else {
                    notes.append(
                        "\(path).DestinationConfig.\(key): a \(type) destination has no local counterpart; ignored"
                    )
                    continue
                }
                let target = arn.split(separator: ":").last.map(String.init) ?? arn
                guard functionNames.values.contains(target) else {
                    notes.append(
                        "\(path).DestinationConfig.\(key): '\(arn)' is not a function of this template; ignored"
                    )
                    continue
                }
                function[field] = .string(target)
            }
        }

        func number(_ value: Value, at path: String) throws(ConfigurationError) -> JSONValue {
            guard let text = value.text, let number = Double(text), number.isFinite,
                text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" })
            else {
                throw ConfigurationError(
                    file: file,
                    path: path,
                    message: "must be a number, found '\(value.text ?? "a structure")'"
                )
            }
            return number == number.rounded() && abs(number) < 1e15 ? .integer(Int64(number)) : .double(number)
        }

        /// The template path of a runtime.json path that failed validation.
        func templatePath(of path: String) -> String {
            let fields = [
                "timeout": "Timeout", "memory": "MemorySize", "concurrency": "ReservedConcurrentExecutions",
                "environment": "Environment.Variables", "routes": "Events", "schedule": "Events",
                "retries": "EventInvokeConfig.MaximumRetryAttempts",
                "maxEventAge": "EventInvokeConfig.MaximumEventAgeInSeconds",
                "onFailure": "EventInvokeConfig.DestinationConfig.OnFailure",
                "onSuccess": "EventInvokeConfig.DestinationConfig.OnSuccess", "handler": "Handler",
                "command": "Runtime", "directory": "CodeUri",
            ]
            let parts = path.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count >= 2, parts[0] == "functions", let source = sources[parts[1]] else { return path }
            let base = "Resources.\(source.id).Properties"
            guard parts.count == 3 else { return base }
            let field = String(parts[2].prefix { $0 != "." && $0 != "[" })
            let property = fields[field] ?? field
            let top = String(property.prefix { $0 != "." })
            return source.inherited.contains(top) ? "Globals.Function.\(property)" : "\(base).\(property)"
        }

        // MARK: - Intrinsic functions

        /// `value` resolved where it can be: an intrinsic function that does not resolve locally is
        /// left out (with a note naming its path), and the rest is kept.
        mutating func resolveLeniently(_ value: Value, at path: String) -> Value? {
            switch value {
            case .text, .null:
                return value
            case .map(let pairs) where pairs.count == 1 && (pairs[0].0 == "Ref" || pairs[0].0.hasPrefix("Fn::")):
                do {
                    return try resolve(value)
                } catch {
                    notes.append("\(path): \(error.reason); left out")
                    return nil
                }
            case .list(let items):
                var kept: [Value] = []
                for (index, item) in items.enumerated() where !Self.isNoValue(item) {
                    if let resolved = resolveLeniently(item, at: "\(path)[\(index)]") { kept.append(resolved) }
                }
                return .list(kept)
            case .map(let pairs):
                var kept: [(String, Value)] = []
                for (key, item) in pairs where !Self.isNoValue(item) {
                    if let resolved = resolveLeniently(item, at: "\(path).\(key)") { kept.append((key, resolved)) }
                }
                return .map(kept)
            }
        }

        /// `value` with every intrinsic function resolved, `AWS::NoValue` entries dropped.
        func resolve(_ value: Value) throws(Unresolved) -> Value {
            switch value {
            case .text, .null:
                return value
            case .list(let items):
                var resolved: [Value] = []
                for item in items {
                    if Self.isNoValue(item) { continue }
                    resolved.append(try resolve(item))
                }
                return .list(resolved)
            case .map(let pairs):
                if pairs.count == 1, let intrinsic = try intrinsic(pairs[0].0, pairs[0].1) { return intrinsic }
                var resolved: [(String, Value)] = []
                for (key, item) in pairs {
                    if Self.isNoValue(item) { continue }
                    resolved.append((key, try resolve(item)))
                }
                return .map(resolved)
            }
        }

        static func isNoValue(_ value: Value) -> Bool {
            value == .map([("Ref", .text("AWS::NoValue"))])
        }

        static let pseudoParameters = [
            "AWS::Region": ARN.region, "AWS::AccountId": ARN.account, "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "galley",
            "AWS::StackId":
                "arn:aws:cloudformation:\(ARN.region):\(ARN.account):stack/galley/00000000-0000-0000-0000-000000000000",
        ]

        /// The value of `Ref name`.
        func reference(_ name: String) throws(Unresolved) -> Value {
            if let parameter = parameters[name] { return parameter }
            if let pseudo = Self.pseudoParameters[name] { return .text(pseudo) }
            if let function = functionNames[name] { return .text(function) }
            throw Unresolved(reason: "!Ref \(name) does not resolve locally (not a parameter or a function)")
        }

        /// `Fn::GetAtt [resource, attribute]`.
        func attribute(_ resource: String, _ attribute: String) throws(Unresolved) -> Value {
            if let function = functionNames[resource] {
                if attribute == "Arn" { return .text(ARN.function(function)) }
            }
            throw Unresolved(reason: "!GetAtt \(resource).\(attribute) does not resolve locally")
        }

        func intrinsic(_ key: String, _ argument: Value) throws(Unresolved) -> Value? {
            switch key {
            case "Ref":
                guard let name = argument.text else { throw Unresolved(reason: "!Ref takes a name") }
                return try reference(name)
            case "Fn::GetAtt":
                let parts: [String]
                switch argument {
                case .list(let items):
                    parts = try items.map { (item) throws(Unresolved) in try resolve(item).text ?? "" }
                case .text(let dotted): parts = dotted.split(separator: ".", maxSplits: 1).map(String.init)
                default: parts = []
                }
                guard parts.count == 2 else { throw Unresolved(reason: "!GetAtt takes Resource.Attribute") }
                return try attribute(parts[0], parts[1])
            case "Fn::Sub":
                var template = argument
                var variables: [String: Value] = [:]
                if case .list(let items) = argument, items.count == 2 {
                    template = items[0]
                    for (name, value) in items[1].pairs { variables[name] = try resolve(value) }
                }
                guard let text = template.text else { throw Unresolved(reason: "!Sub takes a string") }
                return .text(try substitute(text, variables))
            case "Fn::Join":
                guard case .list(let items) = argument, items.count == 2, let separator = items[0].text,
                    case .list(let parts) = try resolve(items[1])
                else { throw Unresolved(reason: "!Join takes [separator, [values]]") }
                let texts = parts.compactMap(\.text)
                guard texts.count == parts.count else { throw Unresolved(reason: "!Join of values that are not text") }
                return .text(texts.joined(separator: separator))
            case "Fn::Select":
                guard case .list(let items) = argument, items.count == 2,
                    let index = try resolve(items[0]).text.flatMap({ Int($0) }),
                    case .list(let options) = try resolve(items[1]), options.indices.contains(index)
                else { throw Unresolved(reason: "!Select takes [index, [values]] with the index in range") }
                return options[index]
            case "Fn::If":
                guard case .list(let items) = argument, items.count == 3, let name = items[0].text else {
                    throw Unresolved(reason: "!If takes [condition, value if true, value if false]")
                }
                return try resolve(try condition(name) ? items[1] : items[2])
            case "Fn::FindInMap":
                guard case .list(let items) = argument, items.count == 3 else {
                    throw Unresolved(reason: "!FindInMap takes [map, key, key]")
                }
                let keys = try items.map { (item) throws(Unresolved) in try resolve(item).text ?? "" }
                guard let found = root["Mappings"]?[keys[0]]?[keys[1]]?[keys[2]] else {
                    throw Unresolved(reason: "!FindInMap \(keys.joined(separator: ".")) is not in Mappings")
                }
                return try resolve(found)
            case "Fn::ImportValue", "Fn::GetAZs", "Fn::Cidr", "Fn::Base64", "Fn::Split", "Fn::Transform",
                "Fn::Length", "Fn::ToJsonString":
                throw Unresolved(reason: "\(key) does not resolve locally")
            default:
                return nil
            }
        }

        /// `${Name}`, `${Resource.Attribute}` and `${!Literal}` in a `Fn::Sub` string.
        func substitute(_ text: String, _ variables: [String: Value]) throws(Unresolved) -> String {
            var output = ""
            var rest = Substring(text)
            while let open = rest.range(of: "${") {
                output += rest[..<open.lowerBound]
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                    output += rest[open.lowerBound...]
                    return output
                }
                let name = String(rest[open.upperBound..<close])
                rest = rest[rest.index(after: close)...]
                if name.hasPrefix("!") {
                    output += "${\(name.dropFirst())}"
                    continue
                }
                let value: Value
                if let variable = variables[name] {
                    value = variable
                } else if let dot = name.firstIndex(of: "."), parameters[name] == nil {
                    value = try attribute(String(name[..<dot]), String(name[name.index(after: dot)...]))
                } else {
                    value = try reference(name)
                }
                guard let text = value.text else { throw Unresolved(reason: "${\(name)} is not text") }
                output += text
            }
            return output + rest
        }

        /// A condition of `Conditions`: `Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`, `Condition`.
        func condition(_ name: String) throws(Unresolved) -> Bool {
            guard let definition = conditions[name] else {
                throw Unresolved(reason: "condition \(name) is not defined")
            }
            return try evaluate(definition)
        }

        func evaluate(_ value: Value) throws(Unresolved) -> Bool {
            guard case .map(let pairs) = value, pairs.count == 1 else {
                throw Unresolved(reason: "a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition")
            }
            let (key, argument) = pairs[0]
            switch (key, argument) {
            case ("Condition", .text(let name)):
                return try condition(name)
            case ("Fn::Equals", .list(let items)) where items.count == 2:
                return try resolve(items[0]) == resolve(items[1])
            case ("Fn::Not", .list(let items)) where items.count == 1:
                return try !evaluate(items[0])
            case ("Fn::And", .list(let items)):
                for item in items where try !evaluate(item) { return false }
                return true
            case ("Fn::Or", .list(let items)):
                for item in items where try evaluate(item) { return true }
                return false
            default:
                throw Unresolved(reason: "\(key) is not a condition Galley evaluates")
            }
        }
    }
}
