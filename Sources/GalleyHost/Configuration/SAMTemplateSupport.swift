import Galley
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An AWS SAM template (`template.yaml`) read as a deployment: `galley serve --template`.
///
/// Reading one needs YAML (Yams, and with it the whole of Foundation), so it lives in the
/// `GalleyTemplates` module that `galley-full` links and registers with ``register(reader:)``; the
/// lean `galley` hands a command with a template to `galley-full`.
///
/// Each `AWS::Serverless::Function` becomes a function of runtime.json, named by its `FunctionName`
/// or its logical id, with `Globals.Function` under its own properties. `Parameters` take their
/// `Default` or a value from `--parameter-overrides`. CloudFormation's intrinsic functions (`Ref`,
/// `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, `Fn::If` with `Conditions`, `Fn::FindInMap`),
/// long or short (`!Ref`) form, are resolved where they resolve locally: parameters, pseudo
/// parameters, and the ARNs and names of the template's functions.
///
/// What has no local meaning (a `Policies`, an SQS event source, a reference to a table) is named in
/// ``RuntimeConfiguration/notes``, one line each, and the rest is served.
public enum SAMTemplate {
    /// `--parameter-overrides` of this run, applied to every template the process reads (a
    /// reload's too).
    public static let parameterOverrides = Mutex<[String: String]>([:])

    /// Whether `path` names a template rather than runtime.json: by its extension.
    public static func isTemplate(_ path: String) -> Bool {
        path.hasSuffix(".yaml") || path.hasSuffix(".yml") || path.hasSuffix(".template")
    }

    /// Parses `--parameter-overrides` in either of SAM's forms: `Name=Value Other=Value`, or
    /// `ParameterKey=Name,ParameterValue=Value …`. Values may be quoted to hold spaces.
    public static func parseOverrides(_ text: String) throws(ConfigurationError) -> [String: String] {
        var overrides: [String: String] = [:]
        for item in Self.words(text) {
            if item.hasPrefix("ParameterKey=") {
                let parts = item.split(separator: ",", maxSplits: 1)
                guard parts.count == 2, parts[1].hasPrefix("ParameterValue=") else {
                    throw ConfigurationError(
                        file: "--parameter-overrides",
                        path: "",
                        message: "'\(item)' must be ParameterKey=Name,ParameterValue=Value"
                    )
                }
                overrides[String(parts[0].dropFirst("ParameterKey=".count))] = String(
                    parts[1].dropFirst("ParameterValue=".count)
                )
            } else if let equals = item.firstIndex(of: "="), equals != item.startIndex {
                overrides[String(item[..<equals])] = String(item[item.index(after: equals)...])
            } else {
                throw ConfigurationError(
                    file: "--parameter-overrides",
                    path: "",
                    message: "'\(item)' must be Name=Value (or ParameterKey=Name,ParameterValue=Value)"
                )
            }
        }
        return overrides
    }

    /// Splits on spaces outside quotes, dropping the quotes.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var started = false
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                started = true
            } else if character == " " || character == "\n" || character == "\t" {
                if started || !current.isEmpty { words.append(current) }
                current = ""
                started = false
            } else {
                current.append(character)
            }
        }
        if started || !current.isEmpty { words.append(current) }
        return words
    }

    /// What reads a template into a deployment, once registered (by `galley-full`).
    public typealias Reader = @Sendable (String) throws(ConfigurationError) -> RuntimeConfiguration

    private static let reader = Mutex<Reader?>(nil)

    /// Makes `RuntimeConfiguration.load(from:)` read templates with `read`.
    public static func register(reader read: @escaping Reader) {
        reader.withLock { $0 = read }
    }

    /// Whether this binary reads templates.
    public static var canRead: Bool { reader.withLock { $0 != nil } }

    static func load(from path: String) throws(ConfigurationError) -> RuntimeConfiguration {
        guard let read = reader.withLock({ $0 }) else {
            throw ConfigurationError(
                file: path,
                path: "",
                message:
                    "an AWS SAM template is read by galley-full, which this binary is not; swift build builds it beside galley"
            )
        }
        return try read(path)
    }
}
