/// A function's HTTP route from runtime.json, e.g. `GET /hello/{name}` or `ANY /files/{proxy+}`.
public struct Route: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
        /// `{name+}`: matches the rest of the path, slashes included. Always the last segment.
        case greedy(String)
    }

    /// The event a route's function receives, and the rules its answer is read by.
    public enum PayloadVersion: String, Sendable, Hashable {
        /// API Gateway HTTP APIs and function URLs: ``APIGatewayV2Request`` (the default).
        case v2 = "2.0"
        /// API Gateway REST APIs with Lambda proxy integration: ``APIGatewayRequest``.
        case v1 = "1.0"
    }

    /// The HTTP method in upper case, or `ANY`.
    public var method: String
    public var segments: [Segment]
    public var payload = PayloadVersion.v2

    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"]

    /// Parses `METHOD /path`; the message says what is wrong.
    public init(parsing text: String) throws(RouteSyntaxError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[1].hasPrefix("/") else {
            throw RouteSyntaxError("'\(text)' must be 'METHOD /path', e.g. 'GET /hello/{name}'")
        }
        let method = parts[0].uppercased()
        guard Self.methods.contains(method) else {
            throw RouteSyntaxError(
                "'\(parts[0])' is not a method; use one of \(Self.methods.sorted().joined(separator: ", "))"
            )
        }
        var segments: [Segment] = []
        var names: Set<String> = []
        let pieces = parts[1].dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (position, piece) in pieces.enumerated() {
            if piece.isEmpty {
                if position == pieces.count - 1 && pieces.count == 1 { break }  // "/"
                throw RouteSyntaxError("'\(parts[1])' has an empty path segment")
            }
            if piece.hasPrefix("{") {
                guard piece.hasSuffix("}"), piece.count > 2 else {
                    throw RouteSyntaxError("'\(piece)' in '\(parts[1])' must be '{name}' or '{name+}'")
                }
                var name = String(piece.dropFirst().dropLast())
                let greedy = name.hasSuffix("+")
                if greedy { name.removeLast() }
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw RouteSyntaxError("'\(piece)' in '\(parts[1])' is not a valid parameter name")
                }
                guard names.insert(name).inserted else {
                    throw RouteSyntaxError("'\(parts[1])' uses the parameter '\(name)' twice")
                }
                if greedy {
                    guard position == pieces.count - 1 else {
                        throw RouteSyntaxError("'{\(name)+}' in '\(parts[1])' must be the last segment")
                    }
                    segments.append(.greedy(name))
                } else {
                    segments.append(.parameter(name))
                }
            } else {
                guard !piece.contains("{"), !piece.contains("}") else {
                    throw RouteSyntaxError("'\(piece)' in '\(parts[1])' mixes text and a parameter")
                }
                if let mark = piece.first(where: { $0 == "?" || $0 == "#" }) {
                    throw RouteSyntaxError(
                        "'\(parts[1])' can never match: a request's path never holds '\(mark)' (routes match the path, without the query)"
                    )
                }
                segments.append(.literal(String(piece)))
            }
        }
        if case .literal(let first) = segments.first {
            if first == "_galley" {
                throw RouteSyntaxError("'\(parts[1])' can never match: /_galley/ is the host's own")
            }
            if first == "2015-03-31", segments.count > 1, case .literal("functions") = segments[1] {
                throw RouteSyntaxError("'\(parts[1])' can never match: /2015-03-31/functions is the Lambda Invoke API")
            }
        }
        self.method = method
        self.segments = segments
    }

    /// The route as runtime.json writes it, and as API Gateway's `routeKey`.
    public var description: String { "\(method) \(path)" }

    /// The path pattern, e.g. `/hello/{name}`.
    public var path: String {
        "/"
            + segments.map { segment in
                switch segment {
                case .literal(let text): text
                case .parameter(let name): "{\(name)}"
                case .greedy(let name): "{\(name)+}"
                }
            }
            .joined(separator: "/")
    }

    /// Two routes with the same shape answer the same requests, whatever their parameters' names.
    var shape: String {
        method + " /"
            + segments.map { segment in
                switch segment {
                case .literal(let text): text
                case .parameter: "{}"
                case .greedy: "{+}"
                }
            }
            .joined(separator: "/")
    }
}

public struct RouteSyntaxError: Error, Sendable, CustomStringConvertible {
    public var message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
