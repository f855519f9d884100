import Galley
import Testing

@testable import Functions

/// The shipped `hello`, called directly as `galley new` tests a new function.
struct HelloTests {
    @Test func greetsByNameFromTheEventOrThePath() async throws {
        let handler = Hello(context: .forTesting(functionName: "hello"))
        let context = Context.forTesting(functionName: "hello")
        #expect(try await handler.handle(.init(name: "Ada"), context: context).message == "Hello, Ada!")
        #expect(
            try await handler.handle(.init(pathParameters: ["name": "Grace"]), context: context).message
                == "Hello, Grace!"
        )
        #expect(try await handler.handle(.init(), context: context).message == "Hello, world!")
    }
}
