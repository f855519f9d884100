#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An error a handler throws to choose the `errorType` the caller sees.
///
/// Any other thrown error is reported with its Swift type name as `errorType` and its
/// description as `errorMessage`.
public struct FunctionError: Error, Sendable, CustomStringConvertible {
    /// The `errorType` of the error object, e.g. `"ValidationError"`.
    public var type: String
    /// The `errorMessage` of the error object.
    public var message: String

    public init(_ message: String, type: String = "FunctionError") {
        self.type = type
        self.message = message
    }

    public var description: String { "\(type): \(message)" }
}

/// The Lambda error object: what the caller receives when an invocation fails.
///
/// `{"errorType": "…", "errorMessage": "…", "stackTrace": […]}`, as the Lambda runtimes send it.
public struct ErrorObject: Codable, Sendable, Equatable {
    public var errorType: String
    public var errorMessage: String
    public var stackTrace: [String]

    public init(errorType: String, errorMessage: String, stackTrace: [String] = []) {
        self.errorType = errorType
        self.errorMessage = errorMessage
        self.stackTrace = stackTrace
    }

    /// The error object for anything a handler throws.
    public init(_ error: any Error) {
        switch error {
        case let error as FunctionError:
            self.init(errorType: error.type, errorMessage: error.message)
        case PayloadCoding.event(let error):
            self.init(errorType: "Runtime.UnmarshalError", errorMessage: "Could not decode the event: \(error.summary)")
        case PayloadCoding.result(let error):
            self.init(errorType: "Runtime.MarshalError", errorMessage: "Could not encode the result: \(error)")
        case let error as DecodingError:
            // Thrown by the handler's own code, e.g. decoding a stored value: its error, not the event's.
            self.init(errorType: "DecodingError", errorMessage: error.summary)
        default:
            self.init(errorType: String(describing: type(of: error)), errorMessage: String(describing: error))
        }
    }
}

extension DecodingError {
    /// One line naming the field and what was wrong with it, e.g.
    /// `functions.hello.timeout: expected a number, found a string`.
    package var summary: String {
        func path(_ context: Context) -> String {
            var path = ""
            for key in context.codingPath {
                if let index = key.intValue {
                    path += "[\(index)]"
                } else {
                    path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return path.isEmpty ? "" : "\(path): "
        }
        switch self {
        case .typeMismatch(let type, let context):
            let text = context.debugDescription
            if let found = text.firstRange(of: "but found "),
                let end = text[found.upperBound...].firstRange(of: " instead")
            {
                return
                    "\(path(context))expected \(Self.describe(type)), found \(text[found.upperBound..<end.lowerBound])"
            }
            return "\(path(context))expected \(Self.describe(type)); \(text)"
        case .valueNotFound(let type, let context):
            return "\(path(context))expected \(Self.describe(type)), found null"
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent)missing required field '\(key.stringValue)'"
        case .dataCorrupted(let context):
            return "\(path(context))\(context.debugDescription)"
        @unknown default:
            return String(describing: self)
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Double.Type, is UInt.Type, is Float.Type: "a number"
        case is Bool.Type: "true or false"
        default:
            String(describing: type).hasPrefix("Dictionary") ? "an object" : String(describing: type)
        }
    }
}
