import Galley
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The Lambda Invoke API, as awscli and boto3 call it (`shared/LAMBDA_CONTRACTS.md` §1).
extension HostResponder {
    func getFunction(_ rawName: Substring, qualifier: String?, wrapped: Bool) -> Response {
        let deployment = dispatcher.deployment
        guard let (name, qualifier) = Self.functionName(rawName, qualifier: qualifier),
            let function = deployment.functions[name]
        else {
            let name = PercentEncoding.decode(rawName)
            return Self.serviceError(InvokeError(.functionNotFound, "Function not found: \(ARN.function(name))"))
        }
        // Galley deploys only $LATEST: any other version or alias does not exist, as on Lambda.
        if let qualifier, qualifier != "$LATEST" {
            return Self.serviceError(
                InvokeError(.functionNotFound, "Function not found: \(ARN.function(name, qualifier: qualifier))")
            )
        }
        let configuration = FunctionConfigurationRecord(
            function,
            lastModified: started,
            exposeEnvironment: deployment.configuration.server.exposeEnvironment
        )
        guard wrapped else { return .json(.ok, configuration.json) }
        return .json(
            .ok,
            #"{"Configuration":\#(configuration.json),"Code":{"RepositoryType":"S3","Location":""},"Tags":{}}"#
        )
    }

    /// An operation of the Lambda API that Galley does not serve.
    func unsupported(_ request: Request) -> Response {
        Self.serviceError(
            InvokeError(.invalidParameterValue, "Galley does not serve \(request.method) \(request.uri.path)")
        )
    }

    func listFunctions(_ deployment: Deployment) -> Response {
        let records = deployment.functions.keys.sorted().map {
            FunctionConfigurationRecord(
                deployment.functions[$0]!,
                lastModified: started,
                exposeEnvironment: deployment.configuration.server.exposeEnvironment
            ).json
        }
        return .json(.ok, #"{"Functions":[\#(records.joined(separator: ","))],"NextMarker":null}"#)
    }

    /// An Invoke API call. Only what crosses a suspension lives here; the work between them is in
    /// functions of their own, so that this function's frame fits the task allocator's slab (see
    /// ``route(_:context:match:)``).
    func invoke(_ request: Request, function rawName: Substring, qualifier: String?) async -> Response {
        var invocation: Invocation
        do {
            invocation = try Self.invocation(of: request, function: rawName, qualifier: qualifier)
        } catch {
            return Self.serviceError(error)
        }
        switch await Self.collectBody(of: request, upTo: Dispatcher.maxSyncPayload + 1) {
        case .success(let body): invocation.payload = Data(body.readableBytesView)
        case .failure(let failure): return Self.invokeRefusal(failure)
        }
        do {
            switch invocation.kind {
            case .event:
                try await events.submit(invocation)
                return Self.accepted(invocation, status: .accepted)
            case .dryRun:
                try dispatcher.validate(invocation)
                return Self.accepted(invocation, status: .noContent)
            default:
                return Self.answer(try await dispatcher.invoke(invocation))
            }
        } catch {
            return Self.serviceError(error, requestID: invocation.requestID)
        }
    }

    /// The invocation an Invoke API request asks for, its payload still to come.
    ///
    /// - Throws: ``InvokeError`` for a name, invocation type or client context that is not valid.
    @inline(never)
    static func invocation(
        of request: Request,
        function rawName: Substring,
        qualifier: String?
    ) throws(InvokeError) -> Invocation {
        guard let (name, qualifier) = Self.functionName(rawName, qualifier: qualifier) else {
            throw InvokeError(
                .invalidParameterValue,
                "'\(PercentEncoding.decode(rawName))' is not a function name or ARN"
            )
        }
        let kindName = request.headers[.amzInvocationType] ?? "RequestResponse"
        let kind: Invocation.Kind
        switch kindName {
        case "RequestResponse": kind = .requestResponse
        case "Event": kind = .event
        case "DryRun": kind = .dryRun
        default:
            throw InvokeError(.invalidParameterValue, "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun")
        }
        var clientContext: String?
        if let encoded = request.headers[.amzClientContext] {
            guard let data = Data(base64Encoded: encoded), (try? JSONSyntax.validate(data)) != nil else {
                throw InvokeError(.invalidRequestContent, "Client context must be a valid Base64-encoded JSON object.")
            }
            clientContext = String(decoding: data, as: UTF8.self)
        }
        var invocation = Invocation(
            function: name,
            qualifier: qualifier,
            payload: Data(),
            kind: kind,
            clientContext: clientContext,
            wantsLogTail: kind == .requestResponse && request.headers[.amzLogType] == "Tail"
        )
        invocation.traceHeaders = Self.traceHeaders(of: request)
        return invocation
    }

    /// The answer to an Invoke API request whose body could not be read.
    @inline(never)
    static func invokeRefusal(_ failure: BodyError) -> Response {
        switch failure {
        case .tooLarge:
            Self.serviceError(Self.tooLarge(Dispatcher.maxSyncPayload))
        case .malformed(let reason):
            Self.serviceError(InvokeError(.invalidRequestContent, "Could not read the request body: \(reason)"))
        }
    }

    /// The answer to an event (`202`) or a dry run (`204`).
    @inline(never)
    static func accepted(_ invocation: Invocation, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.amznRequestID: invocation.requestID])
    }

    /// A synchronous invocation's result as the Invoke API answers it.
    @inline(never)
    static func answer(_ result: InvocationResult) -> Response {
        var headers: HTTPFields = [
            .contentType: "application/json",
            .amzExecutedVersion: result.executedVersion,
            .amznRequestID: result.requestID,
            .amznRemappedContentLength: "0",
        ]
        if result.isFunctionError { headers[.amzFunctionError] = "Unhandled" }
        if let tail = result.logTail { headers[.amzLogResult] = tail }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: result.payload)))
    }

    /// A service error as botocore parses it: status, `x-amzn-ErrorType` and the modeled body.
    @inline(never)
    static func serviceError(_ error: InvokeError, requestID: String = Invocation.makeRequestID()) -> Response {
        var headers: HTTPFields = [.amznErrorType: error.code.exception, .amznRequestID: requestID]
        if error.code == .tooManyRequests { headers[.retryAfter] = "1" }
        return .json(HTTPResponse.Status(code: error.code.status), error.body, headers: headers)
    }

    static func tooLarge(_ limit: Int) -> InvokeError {
        InvokeError(.requestTooLarge, "Request must be smaller than \(limit) bytes for the InvokeFunction operation")
    }

    /// `name`, `name:qualifier`, `123456789012:function:name[:q]` or `arn:aws:lambda:…:function:name[:q]`,
    /// percent-encoded as botocore sends it; `nil` when it is none of these.
    static func functionName(_ raw: Substring, qualifier: String?) -> (String, String?)? {
        // The usual case: a plain name, nothing to decode or split.
        if !raw.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: ":") }) {
            let name = String(raw)
            return FunctionName.isValid(name) ? (name, qualifier) : nil
        }
        let decoded = PercentEncoding.decode(raw)
        guard decoded.utf8.count <= 256 else { return nil }
        var parts = decoded.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.first == "arn" {
            guard parts.count >= 7, parts[2] == "lambda", parts[5] == "function" else { return nil }
            parts.removeFirst(6)
        } else if parts.count >= 3, parts[1] == "function" {
            parts.removeFirst(2)
        }
        guard (1...2).contains(parts.count), FunctionName.isValid(parts[0]) else { return nil }
        let inline = parts.count == 2 ? parts[1] : nil
        if let inline, let qualifier, inline != qualifier { return nil }
        return (parts[0], inline ?? qualifier)
    }

    /// The caller's `X-Amzn-Trace-Id`, `traceparent` and `tracestate`, by lower-case name.
    static func traceHeaders(of request: Request) -> [String: String] {
        var found: [String: String] = [:]
        for (name, field) in zip(TraceHeader.names, TraceHeader.fields) {
            if let value = request.headers[field] { found[name] = value }
        }
        return found
    }

    static func queryValue(_ name: String, in query: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if PercentEncoding.decode(parts[0]) == name {
                return parts.count > 1 ? PercentEncoding.decode(parts[1], plusIsSpace: true) : ""
            }
        }
        return nil
    }
}

/// The minimal `FunctionConfiguration` of ListFunctions and GetFunction.
struct FunctionConfigurationRecord: Encodable {
    var FunctionName: String
    var FunctionArn: String
    var Runtime = "provided.al2023"
    var Role: String
    var Handler: String
    var CodeSize: Int64 = 0
    var Description: String
    var Timeout: Int
    var MemorySize: Int
    var LastModified: String
    var CodeSha256: String
    var Version = "$LATEST"
    var State = "Active"
    var LastUpdateStatus = "Successful"
    var PackageType = "Zip"
    var Architectures = ["x86_64"]
    var Environment: [String: [String: String]]?

    init(_ function: Deployment.Function, lastModified: Date, exposeEnvironment: Bool) {
        let configuration = function.configuration
        FunctionName = function.name
        FunctionArn = function.arn
        Role = "arn:aws:iam::\(ARN.account):role/galley"
        Handler = configuration.handler
        Description = configuration.description
        Timeout = Int(configuration.timeout.rounded(.up))
        MemorySize = configuration.memory
        LastModified = Self.format(lastModified)
        CodeSha256 = Data(configuration.handler.utf8).base64EncodedString()
        // Any caller can read this (the Invoke API accepts any signature): values are masked
        // unless runtime.json opts in with "server": {"exposeEnvironment": true}.
        let variables =
            exposeEnvironment ? configuration.environment : configuration.environment.mapValues { _ in Self.masked }
        Environment = configuration.environment.isEmpty ? nil : ["Variables": variables]
    }

    /// What an environment value reads as when values are not exposed.
    static let masked = "****"

    /// `2024-01-01T00:00:00.000+0000`, as Lambda writes `LastModified`.
    static func format(_ date: Date) -> String {
        let iso = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
        return iso.replacing("Z", with: "+0000")
    }
}
