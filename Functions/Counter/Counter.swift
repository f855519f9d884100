import Galley

/// Counts by name in its store: `{"name": "visits"}` adds one and returns
/// `{"name": "visits", "count": 7}`; `"by": 5` adds five. Behind a route the name comes from the
/// path (`POST /count/{name}`), and a `GET` returns the count without changing it.
///
/// The increment is atomic in the store, so concurrent calls from any number of processes never
/// lose a count.
struct Counter: Handler {
    struct Event: Decodable {
        struct RequestContext: Decodable {
            struct HTTP: Decodable { var method: String }
            var http: HTTP?
        }

        var name: String?
        var by: Int64?
        var pathParameters: [String: String]?
        var requestContext: RequestContext?
    }

    struct Output: Encodable {
        var name: String
        var count: Int64
    }

    init(context: InitContext) {}

    func handle(_ event: Event, context: Context) async throws -> Output {
        guard let name = event.name ?? event.pathParameters?["name"], !name.isEmpty else {
            throw FunctionError(#"a counter needs a name: {"name": "visits"}"#, type: "InvalidInput")
        }
        let store = try context.store
        if event.requestContext?.http?.method == "GET" {
            return Output(name: name, count: try await store.get(name, as: Int64.self) ?? 0)
        }
        return Output(name: name, count: try await store.increment(name, by: event.by ?? 1))
    }
}
