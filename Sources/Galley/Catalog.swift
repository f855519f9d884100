#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The handlers a package ships, by the name runtime.json gives in `"handler"`.
///
/// ```swift
/// public let catalog: Catalog = [
///     .handler("Hello", Hello.self),
///     .handler("Counter", Counter.self),
/// ]
/// ```
public struct Catalog: Sendable, ExpressibleByArrayLiteral {
    /// Every entry, in the order given.
    public let entries: [Entry]

    public init(_ entries: [Entry]) {
        self.entries = entries
    }

    public init(arrayLiteral entries: Entry...) {
        self.init(entries)
    }

    /// The entry registered under `name`.
    public subscript(name: String) -> Entry? {
        entries.first { $0.name == name }
    }

    /// The registered names, sorted, for error messages.
    public var names: [String] { entries.map(\.name).sorted() }

    /// One registered handler.
    public struct Entry: Sendable {
        /// The name runtime.json uses in `"handler"`.
        public let name: String
        let prepare: @Sendable (InitContext) async throws -> PreparedHandler

        /// A ``Handler`` type: JSON in, JSON out.
        public static func handler<H: Handler>(_ name: String, _ type: H.Type) -> Entry {
            Entry(name: name) { context in
                let handler = try await H(context: context)
                return PreparedHandler { payload, context in
                    let event = try PayloadCoding.decode(H.Event.self, from: payload)
                    return try PayloadCoding.encode(try await handler.handle(event, context: context))
                }
            }
        }

        /// A ``ByteHandler`` type: raw payload in, raw bytes out.
        public static func handler<H: ByteHandler>(_ name: String, _ type: H.Type) -> Entry {
            Entry(name: name) { context in
                let handler = try await H(context: context)
                return PreparedHandler { payload, context in try await handler.handle(payload.json, context: context) }
            }
        }

        /// A closure: the short form for handlers with no init phase.
        ///
        /// ```swift
        /// .closure("Echo") { (event: [String: String], context) in event }
        /// ```
        public static func closure<Event: Decodable & SendableMetatype, Output: Encodable & SendableMetatype>(
            _ name: String,
            _ body: @escaping @Sendable (Event, Context) async throws -> Output
        ) -> Entry {
            Entry(name: name) { _ in
                PreparedHandler { payload, context in
                    let event = try PayloadCoding.decode(Event.self, from: payload)
                    return try PayloadCoding.encode(try await body(event, context))
                }
            }
        }

        /// Runs the init phase and returns the environment's handler.
        package func prepare(context: InitContext) async throws -> PreparedHandler {
            try await prepare(context)
        }
    }
}

/// The decoding of the event and the encoding of the result, whose failures are the runtime's
/// (`Runtime.UnmarshalError`, `Runtime.MarshalError`); a `DecodingError` that handler code throws
/// (say, decoding a stored value) is the handler's own error and is reported as such.
enum PayloadCoding: Error {
    case event(DecodingError)
    case result(EncodingError)

    static func decode<Event: Decodable>(_ type: Event.Type, from payload: HandlerPayload) throws -> Event {
        switch payload {
        case .json(let data): return try decode(type, from: data)
        case .values(let values):
            if let event = EventValueDecoding.decode(type, from: values) { return event }
            return try decode(type, from: Data(values.json()))
        }
    }

    static func decode<Event: Decodable>(_ type: Event.Type, from payload: Data) throws -> Event {
        do {
            return try LazyJSONDecoder.standard.decode(type, from: payload)
        } catch let error as DecodingError {
            throw PayloadCoding.event(error)
        }
    }

    static func encode<Output: Encodable>(_ value: Output) throws -> Data {
        do {
            return try DirectJSONEncoder.sortingKeys.encode(value)
        } catch let error as EncodingError {
            throw PayloadCoding.result(error)
        }
    }
}

/// A handler after its init phase, reduced to an event in and bytes out.
package struct PreparedHandler: Sendable {
    package let handle: @Sendable (HandlerPayload, Context) async throws -> Data

    package init(handle: @escaping @Sendable (HandlerPayload, Context) async throws -> Data) {
        self.handle = handle
    }
}

/// An event as it reaches a handler.
package enum HandlerPayload: Sendable {
    /// JSON text.
    case json(Data)
    /// Values the host built itself (a route's request, for a handler in the host's process),
    /// decoded without JSON text between them.
    case values(EventValue)

    /// The event as JSON text: for a ``ByteHandler``, which takes the bytes.
    var json: Data {
        switch self {
        case .json(let data): data
        case .values(let values): Data(values.json())
        }
    }
}

extension JSONEncoder {
    /// A compact encoder with sorted keys, so that equal values are equal bytes in every process:
    /// for handler results, stored values and stored metadata.
    package static func sortingKeys() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}
