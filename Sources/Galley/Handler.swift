#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A function that takes a JSON event and returns a JSON-encodable result.
///
/// The host creates one instance per environment with ``init(context:)`` (Lambda's init phase,
/// reported as `Init Duration`) and then calls ``handle(_:context:)`` once per event, one event
/// at a time per instance. Anything the handler throws becomes a Lambda error object; throw a
/// ``FunctionError`` to choose its `errorType`.
///
/// ```swift
/// struct Hello: Handler {
///     struct Event: Decodable { var name: String? }
///     struct Output: Encodable { var message: String }
///
///     init(context: InitContext) {}
///
///     func handle(_ event: Event, context: Context) async throws -> Output {
///         Output(message: "Hello, \(event.name ?? "world")!")
///     }
/// }
/// ```
public protocol Handler: Sendable {
    /// The event, decoded from the invocation's JSON payload.
    associatedtype Event: Decodable
    /// The result, encoded as the invocation's JSON response.
    associatedtype Output: Encodable

    /// Prepares an environment: runs once, before its first event.
    init(context: InitContext) async throws

    /// Handles one event.
    func handle(_ event: Event, context: Context) async throws -> Output
}

/// A function that works on raw payload bytes, for events that are not worth decoding or for
/// responses that are already encoded.
///
/// The payload has already been checked to be JSON when it arrives through `galley invoke` or
/// the Invoke API. The returned bytes are sent to the caller unchanged.
public protocol ByteHandler: Sendable {
    /// Prepares an environment: runs once, before its first event.
    init(context: InitContext) async throws

    /// Handles one raw payload.
    func handle(_ payload: Data, context: Context) async throws -> Data
}
