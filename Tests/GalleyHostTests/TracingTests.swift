import Foundation
import Galley
import GalleyStore
import InMemoryTracing
import Logging
import Synchronization
import TestSupport
import Testing
import Tracing

@testable import GalleyHost

/// Invocation spans and the X-Ray trace header a function gets.
struct TracingTests {
    /// Answers with the trace header its context carries; fails when asked.
    struct TraceEcho: Handler {
        struct Event: Decodable { var fail: Bool? }
        struct Output: Encodable { var traceID: String }
        init(context: InitContext) {}
        /// Every trace header an invocation saw, in order.
        static let seen = Mutex<[String]>([])

        func handle(_ event: Event, context: Context) async throws -> Output {
            Self.seen.withLock { $0.append(context.traceID) }
            if event.fail == true { throw FunctionError("asked to", type: "TraceError") }
            return Output(traceID: context.traceID)
        }
    }

    func makeDispatcher(tracer: InMemoryTracer) throws -> Dispatcher {
        var function = FunctionConfiguration(handler: "TraceEcho")
        function.isolation = .inline
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["traced": function]),
            catalog: [.handler("TraceEcho", TraceEcho.self)],
            file: "runtime.json"
        )
        return Dispatcher(deployment: deployment, logWriter: LogLines().writer(), tracer: tracer)
    }

    func traceID(of result: InvocationResult) throws -> String {
        let object = try JSONSerialization.jsonObject(with: result.payload) as? [String: String]
        return try #require(object?["traceID"])
    }

    @Test func eachInvocationIsASpanWithItsInitAndTheCallersTraceReachesTheFunction() async throws {
        let tracer = InMemoryTracer()
        let dispatcher = try makeDispatcher(tracer: tracer)

        var first = Invocation(function: "traced", payload: Data("{}".utf8))
        let amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        first.traceHeaders = ["x-amzn-trace-id": amzn]
        #expect(try traceID(of: try await dispatcher.invoke(first)) == amzn)

        var second = Invocation(function: "traced", payload: Data("{}".utf8))
        second.traceHeaders = ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
        #expect(
            try traceID(of: try await dispatcher.invoke(second))
                == "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        )

        // No header: a new X-Ray trace all the same.
        let third = try traceID(
            of: try await dispatcher.invoke(Invocation(function: "traced", payload: Data("{}".utf8)))
        )
        // As X-Ray writes one: the epoch seconds in hex, 24 and 16 random hex digits.
        let seconds = String(UInt64(Date().timeIntervalSince1970), radix: 16)
        let match = try #require(
            third.wholeMatch(of: /Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0/)
        )
        #expect(abs(Int(match.1, radix: 16)! - Int(seconds, radix: 16)!) < 600, "\(third)")

        let failed = try await dispatcher.invoke(Invocation(function: "traced", payload: Data(#"{"fail": true}"#.utf8)))
        #expect(failed.isFunctionError)

        let spans = tracer.finishedSpans
        let invocations = spans.filter { $0.operationName == "traced invoke" }
        #expect(invocations.count == 4)
        let ids = invocations.compactMap { span -> String? in
            guard case .string(let id) = span.attributes["faas.invocation_id"]?.toSpanAttribute() else { return nil }
            return id
        }
        #expect(Set(ids).count == 4)
        #expect(invocations.filter { $0.attributes["faas.coldstart"] != nil }.count == 1)
        #expect(invocations.filter { $0.status?.code == .error }.count == 1)
        // The one init phase is a child of the invocation that ran it.
        let inits = spans.filter { $0.operationName == "traced init" }
        #expect(inits.count == 1)
        let cold = try #require(invocations.first { $0.attributes["faas.coldstart"] != nil })
        #expect(inits.first?.parentSpanID == cold.spanID)
        #expect(inits.first?.traceID == cold.traceID)
        // The caller's headers were handed to the tracer to extract its context from.
        #expect(tracer.performedContextExtractions.count == 2)
    }

    /// Increments `n` in its own namespace.
    struct Tally: Handler {
        struct Output: Encodable { var n: Int64 }
        init(context: InitContext) {}
        func handle(_ event: [String: String], context: Context) async throws -> Output {
            Output(n: try await context.store.increment("n", by: 1))
        }
    }

    @Test func eachStoreCallIsASpanOfItsInvocationAndIsCounted() async throws {
        let tracer = InMemoryTracer()
        let metrics = HostMetrics()
        var function = FunctionConfiguration(handler: "Tally")
        function.isolation = .inline
        let deployment = try Deployment(
            configuration: RuntimeConfiguration(functions: ["tally": function]),
            catalog: [.handler("Tally", Tally.self)],
            file: "runtime.json"
        )
        let dispatcher = Dispatcher(
            deployment: deployment,
            logWriter: LogLines().writer(),
            stores: StoreAccess.provider(StoreOpener { MemoryStore() }, metrics: metrics, tracer: tracer),
            tracer: tracer
        )
        for _ in 0..<3 {
            #expect(
                !(try await dispatcher.invoke(Invocation(function: "tally", payload: Data("{}".utf8)))).isFunctionError
            )
        }
        let spans = tracer.finishedSpans
        let invocations = spans.filter { $0.operationName == "tally invoke" }
        let calls = spans.filter { $0.operationName == "store increment" }
        #expect(calls.count == 3)
        #expect(Set(calls.compactMap(\.parentSpanID)) == Set(invocations.map(\.spanID)))
        let text = metrics.registry.emitToString()
        #expect(
            text.contains(#"galley_store_operations_total{operation="increment",namespace="tally",outcome="ok"} 3"#),
            "\(text)"
        )
        #expect(text.contains(#"galley_store_operation_duration_seconds_count{operation="increment"} 3"#), "\(text)")
    }

    @Test func anEventKeepsItsCallersTraceUntilItsDelivery() async throws {
        let folder = try TemporaryDirectory()
        let tracer = InMemoryTracer()
        let dispatcher = try makeDispatcher(tracer: tracer)
        let queue = try EventQueue(
            path: folder.url.appending(path: "queue.sqlite").path,
            dispatcher: dispatcher,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        // A trace of its own: the handler's record is shared with the other tests, which run alongside.
        let parent = "0af7651916cd43dd8448eb211c80319c"
        let expected = "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=00f067aa0ba902b7;Sampled=1"
        var event = Invocation(function: "traced", payload: Data("{}".utf8), kind: .event)
        event.traceHeaders = ["traceparent": "00-\(parent)-00f067aa0ba902b7-01", "tracestate": "vendor=1"]
        let running = Task { try await queue.run() }
        try await queue.submit(event)
        let deadline = ContinuousClock.now + .seconds(30)
        while !TraceEcho.seen.withLock({ $0.contains(expected) }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        queue.shutdown()
        try await running.value
        #expect(TraceEcho.seen.withLock { $0.contains(expected) })
        let carriers = tracer.performedContextExtractions.compactMap { $0.carrier as? [String: String] }
        #expect(carriers.contains { $0["tracestate"] == "vendor=1" && $0["traceparent"]?.contains(parent) == true })
    }

    @Test func aTraceparentThatIsNotOneIsIgnored() async throws {
        let tracer = InMemoryTracer()
        let dispatcher = try makeDispatcher(tracer: tracer)
        var invocation = Invocation(function: "traced", payload: Data("{}".utf8))
        invocation.traceHeaders = ["traceparent": "00-nothex-00f067aa0ba902b7-01", "x-amzn-trace-id": "Self=1-abc"]
        let trace = try traceID(of: try await dispatcher.invoke(invocation))
        #expect(trace.hasPrefix("Root=1-") && !trace.contains("nothex"))
    }
}
