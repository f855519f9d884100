import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `galley kv export` and `import`: one JSON object per line,
/// `{"key": "k", "value": <JSON>, "version": 3, "expiresAt": 1767225600000, "metadata": {…}}`.
/// A value that is not JSON is written as `"valueBase64"`. On import, `ttl` (seconds) may stand
/// for `expiresAt` (milliseconds since 1970) and `version` is ignored.
public enum StoreTransfer {
    public struct LineError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    static let fields: Set<String> = ["key", "value", "valueBase64", "version", "ttl", "expiresAt", "metadata"]

    /// The export line of one entry.
    public static func line(for entry: StoreEntry) -> String {
        var line = #"{"key":\#(JSONString.quote(entry.key)),"#
        if (try? JSONSyntax.validate(entry.value)) != nil {
            line += #""value":\#(String(decoding: entry.value, as: UTF8.self)),"#
        } else {
            line += #""valueBase64":"\#(entry.value.base64EncodedString())","#
        }
        line += #""version":\#(entry.version)"#
        if let expiration = entry.expiration {
            line += #","expiresAt":\#(Int64((expiration.timeIntervalSince1970 * 1000).rounded()))"#
        }
        if let metadata = entry.metadata {
            line +=
                ",\"metadata\":{"
                + metadata.sorted { $0.key < $1.key }.map {
                    "\(JSONString.quote($0.key)):\(JSONString.quote($0.value))"
                }
                .joined(separator: ",") + "}"
        }
        return line + "}"
    }

    /// The writes for import lines; entries that already expired are skipped.
    ///
    /// - Throws: ``LineError`` naming the first bad line; nothing is written then.
    public static func operations(forLines lines: [[UInt8]], now: Date = Date()) throws(LineError) -> [AtomicOperation]
    {
        var operations: [AtomicOperation] = []
        for (index, line) in lines.enumerated() {
            let number = index + 1
            func fail(_ message: String) -> LineError { LineError(line: number, message: message) }
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) {
                continue
            }
            let members: [String: Range<Int>]
            do {
                members = try JSONSyntax.members(of: line)
            } catch {
                throw fail("not a JSON object: \(error)")
            }
            if let unknown = members.keys.sorted().first(where: { !fields.contains($0) }) {
                throw fail("unknown field '\(unknown)'; known fields are \(fields.sorted().joined(separator: ", "))")
            }
            func decode<Value: Decodable>(_ field: String, as type: Value.Type) throws(LineError) -> Value? {
                guard let range = members[field] else { return nil }
                do {
                    return try JSONDecoder().decode(Value.self, from: Data(line[range]))
                } catch {
                    throw fail("'\(field)' must be \(Value.self == String.self ? "a string" : "\(Value.self)")")
                }
            }
            guard let key = try decode("key", as: String.self) else { throw fail(#"missing "key""#) }
            let value: Data
            if let range = members["value"] {
                value = Data(line[range])
            } else if let encoded = try decode("valueBase64", as: String.self) {
                guard let bytes = Data(base64Encoded: encoded) else { throw fail("'valueBase64' is not base64") }
                value = bytes
            } else {
                throw fail(#"missing "value" (or "valueBase64")"#)
            }
            var options = PutOptions(metadata: try decode("metadata", as: [String: String].self))
            if let ttl = try decode("ttl", as: Double.self) {
                do {
                    options.ttl = try PutOptions.ttl(seconds: ttl, of: "'ttl'")
                } catch {
                    throw fail(error.message)
                }
            } else if let expiresAt = try decode("expiresAt", as: Int64.self) {
                // Compared before subtracting: any Int64 is a valid input, and no arithmetic may trap.
                let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
                if expiresAt <= nowMs { continue }
                let left = expiresAt - nowMs
                guard left <= PutOptions.maxTTLSeconds * 1000 else {
                    throw fail("'expiresAt' is more than 100 years away (\(expiresAt) ms since 1970)")
                }
                // The time itself, not a TTL from now: an export and its import keep the same expiry.
                options.expiresAt = Date(timeIntervalSince1970: Double(expiresAt) / 1000)
            }
            operations.append(.put(key, value, options: options))
        }
        return operations
    }
}
