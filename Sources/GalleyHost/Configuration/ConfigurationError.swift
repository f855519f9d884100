/// A mistake in runtime.json: names the file, the field's path and what was expected.
///
/// Its description is the one line the CLI prints, e.g.
/// `runtime.json: functions.hello.timeout: must be greater than 0 seconds, found -1`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The configuration file.
    public var file: String
    /// The path of the offending field, e.g. `functions.hello.timeout`; empty for the whole file.
    public var path: String
    public var message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
