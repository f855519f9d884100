import Galley

/// `{"name": "Ada"}` → `{"message": "Hello, Ada!"}`. Behind a route it reads `name` from the
/// path (`GET /hello/{name}`) or the query string (`GET /hello?name=Ada`).
struct Hello: Handler {
    struct Event: Decodable {
        var name: String?
        var pathParameters: [String: String]?
        var queryStringParameters: [String: String]?
    }

    struct Output: Encodable {
        var message: String
    }

    let greeting: String

    init(context: InitContext) {
        greeting = context.environment["GREETING"] ?? "Hello"
    }

    func handle(_ event: Event, context: Context) async throws -> Output {
        let name = event.name ?? event.pathParameters?["name"] ?? event.queryStringParameters?["name"] ?? "world"
        context.logger.debug("greeting \(name)")
        return Output(message: "\(greeting), \(name)!")
    }
}
