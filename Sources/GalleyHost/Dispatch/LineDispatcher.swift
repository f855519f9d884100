import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `galley invoke --lines`: one JSON event per line in, one JSON answer per line out.
///
/// With a function, each line is that function's event and each answer its result or error
/// object. Without one, each line is an envelope `{"function": NAME, "event": {…}}` and each
/// answer `{"function", "requestId", "result"}` or `{…, "error"}`; a line that is not an
/// envelope is answered `{"line": N, "error": {…}}` and the stream goes on.
public struct LineDispatcher: Sendable {
    public let dispatcher: Dispatcher
    /// The function every line goes to, or `nil` for envelopes.
    public let function: String?

    public init(dispatcher: Dispatcher, function: String?) {
        self.dispatcher = dispatcher
        self.function = function
    }

    /// The answer to line `number` (1-based), and whether it failed.
    public func answer(_ line: [UInt8], number: Int) async -> (answer: [UInt8], failed: Bool) {
        let (text, failed) =
            if let function {
                await answerEvent(Data(line), function: function)
            } else {
                await answerEnvelope(line, number: number)
            }
        return (Array(text.utf8), failed)
    }

    private func answerEvent(_ payload: Data, function: String) async -> (String, Bool) {
        do {
            let result = try await dispatcher.invoke(Invocation(function: function, payload: payload))
            return (Self.json(result.payload), result.isFunctionError)
        } catch {
            return (Self.error(type: error.code.exception, message: error.message), true)
        }
    }

    private func answerEnvelope(_ line: [UInt8], number: Int) async -> (String, Bool) {
        func invalid(_ message: String) -> (String, Bool) {
            (#"{"line":\#(number),"error":\#(Self.error(type: "InvalidLine", message: message))}"#, true)
        }
        let members: [String: Range<Int>]
        do {
            members = try JSONSyntax.members(of: line)
        } catch {
            return invalid("line \(number) is not a JSON object: \(error)")
        }
        guard let nameRange = members["function"],
            let name = try? JSONDecoder().decode(String.self, from: Data(line[nameRange]))
        else {
            return invalid(
                #"line \#(number) has no "function" string; each line must be {"function": NAME, "event": {…}}"#
            )
        }
        let event = members["event"].map { Data(line[$0]) } ?? Data("{}".utf8)
        let invocation = Invocation(function: name, payload: event)
        let head = #"{"function":\#(JSONString.quote(name)),"requestId":"\#(invocation.requestID)""#
        do {
            let result = try await dispatcher.invoke(invocation)
            let field = result.isFunctionError ? "error" : "result"
            return (head + #","\#(field)":"# + Self.json(result.payload) + "}", result.isFunctionError)
        } catch {
            return (head + #","error":"# + Self.error(type: error.code.exception, message: error.message) + "}", true)
        }
    }

    /// The payload as it is when it is JSON, else as a JSON string (a byte handler may return anything).
    static func json(_ payload: Data) -> String {
        if (try? JSONSyntax.validate(payload)) != nil { return String(decoding: payload, as: UTF8.self) }
        return JSONString.quote(String(decoding: payload, as: UTF8.self))
    }

    static func error(type: String, message: String) -> String {
        String(decoding: Dispatcher.encode(ErrorObject(errorType: type, errorMessage: message)), as: UTF8.self)
    }
}
