import Foundation
import Galley
import GalleyHost
import Testing

/// The event stream: a subscriber that never reads costs no invocation anything, and what it
/// misses is counted.
struct InvocationEventsTests {
    @Test func aSubscriberThatNeverReadsLosesTheOldestAndEveryInvocationCompletes() async throws {
        let log = LogLines()
        let dispatcher = try DispatcherTests().makeDispatcher(log: log)
        let stalled = dispatcher.events.subscribe(function: nil, buffer: 16)
        let invocations = 300
        for _ in 0..<invocations {
            let result = try await dispatcher.invoke(Invocation(function: "sleeper", payload: Data("{}".utf8)))
            #expect(!result.isFunctionError)
        }
        // Each invocation is a start, its lines (START, the handler's two, END, REPORT) and an end;
        // the stalled subscriber holds the newest 16 and has lost every other one.
        let lines = log.all.count
        let published = invocations * 2 + lines
        #expect(stalled.dropped == published - 16, "published \(published), dropped \(stalled.dropped)")
        #expect(dispatcher.events.droppedEvents == stalled.dropped)
        var held = 0
        var iterator = stalled.events.makeAsyncIterator()
        dispatcher.events.finishSubscriptions()
        while await iterator.next() != nil { held += 1 }
        #expect(held == 16)
    }
}
