import Foundation

/// A fresh folder per test, removed when the test (its suite instance) ends.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    /// - Parameter prefix: the start of the folder's name in the temporary folder.
    public init(prefix: String = "galley-test") throws {
        url = FileManager.default.temporaryDirectory.appending(path: "\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// Writes `contents` to `name` inside the folder and returns its path.
    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let file = url.appending(path: name)
        try Data(contents.utf8).write(to: file)
        return file.path
    }

    public func path(_ name: String) -> String { url.appending(path: name).path }
}
