import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `--env-vars FILE` of `galley serve` and `galley invoke`, in AWS SAM's format: per function, the
/// environment variables to set for this run over runtime.json's, and under `Parameters`, those to
/// set for every function.
///
/// ```json
/// {"Parameters": {"STAGE": "local"}, "hello": {"GREETING": "Hi"}}
/// ```
/// Values may be strings, numbers or booleans (written as text, as SAM does). Unlike SAM, a
/// variable runtime.json does not declare is set too, not ignored.
public struct EnvironmentOverrides: Sendable, Equatable {
    public var file: String
    public var all: [String: String] = [:]
    public var functions: [String: [String: String]] = [:]

    /// The overrides of this run, applied to every deployment the process builds (a reload's too).
    public static let current = Mutex<EnvironmentOverrides?>(nil)

    /// Reads `file`.
    ///
    /// - Throws: ``ConfigurationError`` naming the file and the entry that is not an object of
    ///   strings, numbers or booleans.
    public init(file: String) throws(ConfigurationError) {
        self.file = file
        let data: Data
        do {
            data = try Data(contentsOf: URL(filePath: file))
        } catch {
            throw ConfigurationError(
                file: file,
                path: "",
                message: "cannot read the file (\(RuntimeConfiguration.reason(error)))"
            )
        }
        guard let root = try? JSONDecoder().decode([String: Entry].self, from: data) else {
            throw ConfigurationError(
                file: file,
                path: "",
                message: #"must be a JSON object: {"FunctionName": {"VARIABLE": "value"}, "Parameters": {…}}"#
            )
        }
        for (name, entry) in root {
            guard case .variables(let members) = entry else {
                throw ConfigurationError(file: file, path: name, message: "must be an object of variables")
            }
            var variables: [String: String] = [:]
            for (variable, value) in members {
                guard let text = value.text else {
                    throw ConfigurationError(
                        file: file,
                        path: "\(name).\(variable)",
                        message: "must be a string, a number or a boolean"
                    )
                }
                variables[variable] = text
            }
            if name == "Parameters" { all = variables } else { functions[name] = variables }
        }
    }

    /// One entry of the file: an object of variables, or something else (named in the error).
    private enum Entry: Decodable {
        case variables([String: Value])
        case other

        init(from decoder: any Decoder) throws {
            self = (try? .variables([String: Value](from: decoder))) ?? .other
        }
    }

    /// A variable's value as SAM takes it: a string, a number or a boolean, as text.
    private struct Value: Decodable {
        var text: String?

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) {
                text = flag ? "true" : "false"
            } else if let integer = try? container.decode(Int64.self) {
                text = String(integer)
            } else if let number = try? container.decode(Double.self) {
                text = String(number)
            } else {
                text = try? container.decode(String.self)
            }
        }
    }

    /// `configuration` with the overrides set over each function's `environment`.
    ///
    /// - Throws: ``ConfigurationError`` naming a function the file names that is not deployed.
    public func apply(to configuration: RuntimeConfiguration) throws(ConfigurationError) -> RuntimeConfiguration {
        var configuration = configuration
        for name in functions.keys.sorted() where configuration.functions[name] == nil {
            throw ConfigurationError(
                file: file,
                path: name,
                message: "no function named '\(name)' is deployed; functions: "
                    + configuration.functions.keys.sorted().joined(separator: ", ")
            )
        }
        for name in configuration.functions.keys {
            configuration.functions[name]!.environment.merge(all) { _, new in new }
            configuration.functions[name]!.environment.merge(functions[name] ?? [:]) { _, new in new }
        }
        return configuration
    }
}
