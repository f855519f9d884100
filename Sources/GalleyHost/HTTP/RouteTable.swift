import Galley

/// Every function's routes, matched as API Gateway does: the most specific route wins (literal
/// segments before `{parameters}` before `{greedy+}`, an exact method before `ANY`).
public struct RouteTable: Sendable {
    public struct Match: Sendable {
        public var function: String
        public var route: Route
        public var pathParameters: [String: String]

        public init(function: String, route: Route, pathParameters: [String: String]) {
            self.function = function
            self.route = route
            self.pathParameters = pathParameters
        }
    }

    private let routes: [(function: String, route: Route)]

    public init(_ deployment: Deployment) {
        self.init(configuration: deployment.configuration)
    }

    public init(configuration: RuntimeConfiguration) {
        routes = configuration.functions.sorted { $0.key < $1.key }.flatMap { name, function in
            function.routes.map { (name, $0) }
        }
    }

    public var isEmpty: Bool { routes.isEmpty }

    /// The best route for `method` and `path` (percent-encoded, without the query), if any.
    public func match(method: String, path: String) -> Match? {
        let pieces = path.split(separator: "/", omittingEmptySubsequences: true)
        var best: (score: [Int], match: Match)?
        for (function, route) in routes where route.method == method || route.method == "ANY" {
            guard case (var score, let parameters)? = Self.match(route.segments, pieces) else { continue }
            score.append(route.method == "ANY" ? 0 : 1)
            if best == nil || score.lexicographicallyPrecedes(best!.score) == false && score != best!.score {
                best = (score, Match(function: function, route: route, pathParameters: parameters))
            }
        }
        return best?.match
    }

    /// A score per segment (2 literal, 1 parameter, 0 greedy) and the decoded parameters.
    private static func match(_ segments: [Route.Segment], _ pieces: [Substring]) -> ([Int], [String: String])? {
        var score: [Int] = []
        var parameters: [String: String] = [:]
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .literal(let text):
                guard index < pieces.count, PercentEncoding.decode(pieces[index]) == text else { return nil }
                score.append(2)
            case .parameter(let name):
                guard index < pieces.count else { return nil }
                parameters[name] = PercentEncoding.decode(pieces[index])
                score.append(1)
            case .greedy(let name):
                guard index < pieces.count else { return nil }
                parameters[name] = pieces[index...].map { PercentEncoding.decode($0) }.joined(separator: "/")
                score.append(0)
                return (score, parameters)
            }
        }
        return pieces.count == segments.count ? (score, parameters) : nil
    }
}
