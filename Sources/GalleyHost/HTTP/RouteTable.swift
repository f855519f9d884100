import Galley

/// Every function's routes, matched as API Gateway does: the most specific route wins (literal
/// segments before `{parameters}` before `{greedy+}`, an exact method before `ANY`).
public struct RouteTable: Sendable {
    public struct Match: Sendable {
        public let function: String
        public let route: Route
        public var pathParameters: [String: String]
        /// The route as API Gateway's `routeKey` writes it (`GET /hello/{name}`).
        public let routeKey: String

        public init(function: String, route: Route, pathParameters: [String: String]) {
            self.init(function: function, route: route, pathParameters: pathParameters, routeKey: route.description)
        }

        init(function: String, route: Route, pathParameters: [String: String], routeKey: String) {
            self.function = function
            self.route = route
            self.pathParameters = pathParameters
            self.routeKey = routeKey
        }
    }

    /// A route with what every request would otherwise work out again: how specific it is and its key.
    private struct Entry: Sendable {
        var function: String
        var route: Route
        /// A score per segment up to a greedy one (2 literal, 1 parameter, 0 greedy), then the
        /// method's (1 exact, 0 `ANY`): the higher, lexicographically, the more specific.
        var score: [Int]
        var key: String

        init(function: String, route: Route) {
            self.function = function
            self.route = route
            var score: [Int] = []
            scoring: for segment in route.segments {
                switch segment {
                case .literal: score.append(2)
                case .parameter: score.append(1)
                case .greedy:
                    score.append(0)
                    break scoring
                }
            }
            score.append(route.method == "ANY" ? 0 : 1)
            self.score = score
            self.key = route.description
        }
    }

    private let routes: [Entry]

    public init(_ deployment: Deployment) {
        self.init(configuration: deployment.configuration)
    }

    public init(configuration: RuntimeConfiguration) {
        routes = configuration.functions.sorted { $0.key < $1.key }.flatMap { name, function in
            function.routes.map { Entry(function: name, route: $0) }
        }
    }

    public var isEmpty: Bool { routes.isEmpty }

    /// The best route for `method` and `path` (percent-encoded, without the query), if any: of the
    /// routes that match, the most specific, and of equally specific ones the first.
    public func match(method: String, path: String) -> Match? {
        let (pieces, escaped) = Self.pieces(of: path)
        var best: Int?
        for index in routes.indices where routes[index].route.method == method || routes[index].route.method == "ANY" {
            guard Self.matches(routes[index].route.segments, pieces, escaped: escaped) else { continue }
            if let current = best, !routes[current].score.lexicographicallyPrecedes(routes[index].score) { continue }
            best = index
        }
        guard let best else { return nil }
        let entry = routes[best]
        return Match(
            function: entry.function,
            route: entry.route,
            pathParameters: Self.parameters(entry.route.segments, pieces),
            routeKey: entry.key
        )
    }

    /// A path's pieces between its `/` bytes (none empty), and whether it holds a `%` at all: one
    /// walk along its bytes, where splitting the UTF-8 view and converting the pieces cost several
    /// times the matching.
    static func pieces(of path: String) -> (pieces: [Substring], escaped: Bool) {
        var pieces: [Substring] = []
        pieces.reserveCapacity(8)
        var escaped = false
        let utf8 = path.utf8
        var start = utf8.startIndex
        var index = start
        while index != utf8.endIndex {
            switch utf8[index] {
            case UInt8(ascii: "/"):
                if start != index { pieces.append(path[start..<index]) }
                start = utf8.index(after: index)
            case UInt8(ascii: "%"):
                escaped = true
            default:
                break
            }
            index = utf8.index(after: index)
        }
        if start != utf8.endIndex { pieces.append(path[start...]) }
        return (pieces, escaped)
    }

    /// Whether `pieces` (a path's, percent-encoded) match `segments`.
    /// `escaped`: whether the path holds a `%` at all.
    private static func matches(_ segments: [Route.Segment], _ pieces: [Substring], escaped: Bool) -> Bool {
        for (index, segment) in segments.enumerated() {
            guard index < pieces.count else { return false }
            switch segment {
            case .literal(let text):
                guard literal(pieces[index], equals: text, escaped: escaped) else { return false }
            case .parameter:
                continue
            case .greedy:
                return true
            }
        }
        return pieces.count == segments.count
    }

    /// Whether a path's piece, decoded, is `text`. A piece with no escape, the usual one, is
    /// compared as it is, without making a string of it.
    private static func literal(_ piece: Substring, equals text: String, escaped: Bool) -> Bool {
        guard escaped, piece.utf8.contains(UInt8(ascii: "%")) else { return piece == text }
        return PercentEncoding.decode(piece) == text
    }

    /// The decoded parameters of a path that ``matches(_:_:escaped:)`` `segments`.
    private static func parameters(_ segments: [Route.Segment], _ pieces: [Substring]) -> [String: String] {
        var parameters: [String: String] = [:]
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .literal:
                continue
            case .parameter(let name):
                parameters[name] = PercentEncoding.decode(pieces[index])
            case .greedy(let name):
                parameters[name] = pieces[index...].map { PercentEncoding.decode($0) }.joined(separator: "/")
                return parameters
            }
        }
        return parameters
    }
}
