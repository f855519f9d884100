import Galley
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `GET /_galley/logs?function=NAME[&since=MS][&filter=TEXT][&requestId=ID][&follow=true]`: a function's log lines
/// as server-sent events, one `data: {"function","requestId","text","time"}` event per line: the
/// kept ones (since `since`, Unix epoch milliseconds), then, with `follow`, every new line as it
/// arrives until the client goes. What `galley logs` reads.
extension HostResponder {
    func logs(query: String, deployment: Deployment) -> Response {
        guard let function = Self.queryValue("function", in: query), !function.isEmpty else {
            return .json(.badRequest, #"{"message":"name a function: /_galley/logs?function=NAME"}"#)
        }
        guard deployment.functions[function] != nil else {
            let known = deployment.functions.keys.sorted().joined(separator: ", ")
            return Self.message(.notFound, "no function named '\(function)'; deployed functions: \(known)")
        }
        let since = Self.queryValue("since", in: query).flatMap { Int64($0) } ?? 0
        let filter = LineFilter(
            text: Self.queryValue("filter", in: query).flatMap { $0.isEmpty ? nil : $0 },
            requestID: Self.queryValue("requestId", in: query).flatMap { $0.isEmpty ? nil : $0 }
        )
        let follow = Self.queryValue("follow", in: query).map { $0 == "true" || $0 == "1" } ?? false
        // Subscribed before the kept lines are read, so that none falls between the two.
        let subscription = follow ? dispatcher.events.subscribe(function: function) : nil
        let kept = recent?.lines(of: function, since: since) ?? []
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            for line in kept where Self.matches(line, filter) {
                try await writer.write(ByteBuffer(string: Self.event(line)))
            }
            if let subscription {
                // A comment line, so that the client sees the stream is open even when nothing is logged.
                try await writer.write(ByteBuffer(string: ": following\n\n"))
                for await event in subscription.events {
                    guard case .line(let line) = event, Self.matches(line, filter) else { continue }
                    try await writer.write(ByteBuffer(string: Self.event(line)))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Which lines a reader asked for: those containing `text`, of the one invocation `requestID`.
    struct LineFilter {
        var text: String?
        var requestID: String?
    }

    private static func matches(_ line: InvocationEvent.Line, _ filter: LineFilter) -> Bool {
        if let requestID = filter.requestID, line.requestID != requestID { return false }
        guard let text = filter.text else { return true }
        return line.text.contains(text)
    }

    private static func event(_ line: InvocationEvent.Line) -> String {
        let requestID = line.requestID.map(JSONString.quote) ?? "null"
        return
            #"data: {"function":\#(JSONString.quote(line.function)),"requestId":\#(requestID),"#
            + #""text":\#(JSONString.quote(line.text)),"time":\#(line.time)}"# + "\n\n"
    }
}
