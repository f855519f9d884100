import Galley

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Answers with what it received, for checking a deployment (as httpbin does for HTTP):
/// `{"requestId", "functionName", "remainingTimeMs", "environment", "event"}`.
///
/// The event may steer it: `{"sleepMs": 500}` waits first, `{"fail": "why"}` throws a
/// `FunctionError` of type `InspectError`, `{"log": "text"}` writes a log line.
/// A bytes-level handler: the event comes back byte for byte.
struct Inspect: ByteHandler {
    struct Options: Decodable {
        var sleepMs: Int?
        var fail: String?
        var log: String?
    }

    init(context: InitContext) {}

    func handle(_ payload: Data, context: Context) async throws -> Data {
        let options = (try? JSONDecoder().decode(Options.self, from: payload)) ?? Options()
        if let line = options.log { context.logger.info("\(line)") }
        if let sleep = options.sleepMs { try await Task.sleep(for: .milliseconds(sleep)) }
        if let reason = options.fail { throw FunctionError(reason, type: "InspectError") }
        let remaining = context.remainingTime.components
        let summary: [String: String] = [
            "requestId": context.requestID,
            "functionName": context.functionName,
            "invokedFunctionArn": context.invokedFunctionARN,
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var object = try encoder.encode(summary).dropLast()
        object.append(
            contentsOf:
                #","remainingTimeMs":\#(remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000)"#.utf8
        )
        object.append(contentsOf: #","environment":"#.utf8)
        object.append(try encoder.encode(context.environment))
        object.append(contentsOf: #","event":"#.utf8)
        object.append(payload)
        object.append(UInt8(ascii: "}"))
        return Data(object)
    }
}
