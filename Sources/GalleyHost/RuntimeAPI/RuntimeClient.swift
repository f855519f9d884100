/// What a worker's loop needs of the Runtime API, whichever way it reaches the host: the private
/// channel Galley gives its own workers (``ChannelClient``), or HTTP (``RuntimeAPIClient``, on AWS
/// Lambda or any host that sets `AWS_LAMBDA_RUNTIME_API`).
protocol RuntimeClient: AnyObject {
    /// Blocks until the host hands over the next invocation (for the first call: the init phase is over).
    func nextInvocation() throws(ChannelError) -> NextInvocation
    func respond(to requestID: String, with payload: [UInt8]) throws(ChannelError)
    func fail(_ requestID: String, type: String, object: [UInt8]) throws(ChannelError)
    func initError(type: String, object: [UInt8])
}

/// One invocation as the runtime receives it.
struct NextInvocation: Sendable {
    var requestID: String
    /// Unix epoch milliseconds.
    var deadlineMs: Int64
    var functionARN: String
    var traceID: String
    var clientContext: String?
    var payload: ArraySlice<UInt8>
}

extension RuntimeAPIClient: RuntimeClient {
    func nextInvocation() throws(ChannelError) -> NextInvocation {
        let next: Response
        do {
            next = try self.next()
        } catch {
            throw ChannelError(error.description)
        }
        guard next.status == 200, let requestID = next.headers["lambda-runtime-aws-request-id"] else {
            throw ChannelError("/next answered \(next.status): \(String(decoding: next.body, as: UTF8.self))")
        }
        return NextInvocation(
            requestID: requestID,
            deadlineMs: next.headers["lambda-runtime-deadline-ms"].flatMap { Int64($0) } ?? 0,
            functionARN: next.headers["lambda-runtime-invoked-function-arn"] ?? "",
            traceID: next.headers["lambda-runtime-trace-id"] ?? "",
            clientContext: next.headers["lambda-runtime-client-context"],
            payload: next.body[...]
        )
    }

    func respond(to requestID: String, with payload: [UInt8]) throws(ChannelError) {
        do {
            _ = try post("invocation/\(requestID)/response", body: payload)
        } catch {
            throw ChannelError(error.description)
        }
    }

    func fail(_ requestID: String, type: String, object: [UInt8]) throws(ChannelError) {
        do {
            _ = try post(
                "invocation/\(requestID)/error",
                body: object,
                headers: [("Content-Type", "application/json"), ("Lambda-Runtime-Function-Error-Type", "Unhandled")]
            )
        } catch {
            throw ChannelError(error.description)
        }
    }

    func initError(type: String, object: [UInt8]) {
        _ = try? post(
            "init/error",
            body: object,
            headers: [("Content-Type", "application/json"), ("Lambda-Runtime-Function-Error-Type", type)]
        )
    }
}
