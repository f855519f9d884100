import Foundation
import Galley
import Testing

@testable import GalleyHost

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

struct RecentInvocationsTests {
    @Test func keepsTheLastThousandLinesOfEachFunctionInOrderInWholeBatches() {
        let recent = RecentInvocations()
        for batch in 0..<1000 {
            let texts = (0..<3).map { "line \(batch * 3 + $0)" }
            recent.record(
                .lines(InvocationEvent.Batch(function: "f", requestID: "r\(batch)", texts: texts, time: Int64(batch)))
            )
            recent.record(.lines(InvocationEvent.Batch(function: "g", requestID: nil, texts: ["other"], time: 0)))
        }
        // Whole batches: 333 of 3 lines fit in 1,000.
        let lines = recent.lines(of: "f")
        #expect(lines.count == 999)
        #expect(lines.first?.text == "line 2001")
        #expect(lines.first?.requestID == "r667")
        #expect(lines.last?.text == "line 2999")
        #expect(lines.last?.requestID == "r999")
        #expect(recent.lines(of: "f", since: 990).count == 30)
        #expect(recent.lines(of: "g").count == 1000)
        #expect(recent.lines(of: "nobody").isEmpty)
    }

    @Test func aBatchTooLargeForOneRecordIsKeptLineByLine() {
        let recent = RecentInvocations()
        // 200 lines of 1 KB in one batch (a chatty invocation's held lines): 200 KB, kept line by
        // line, the newest that fit in the ring's 256 KB.
        let texts = (0..<200).map { "\($0) " + String(repeating: "x", count: 1000) }
        recent.record(.lines(InvocationEvent.Batch(function: "f", requestID: "r", texts: texts, time: 7)))
        let lines = recent.lines(of: "f")
        #expect(lines.count == 200)
        #expect(lines.map(\.text) == texts)
        #expect(lines.allSatisfy { $0.requestID == "r" && $0.time == 7 })
        // And 1,500 short lines in one batch: the newest 1,000.
        let many = (0..<1500).map { "line \($0)" }
        recent.record(.lines(InvocationEvent.Batch(function: "g", requestID: nil, texts: many, time: 8)))
        #expect(recent.lines(of: "g").map(\.text) == Array(many.suffix(1000)))
    }

    @Test func longLinesWrapAroundTheByteRingAndComeBackWhole() {
        let recent = RecentInvocations()
        // 1,000 lines of about 1 KB: four times the ring, so records straddle its end many times.
        for number in 0..<1000 {
            let text =
                "\(number) "
                + String(repeating: Character(UnicodeScalar(UInt8(97 + number % 26))), count: 1000 + number % 7)
            recent.record(
                .lines(
                    InvocationEvent.Batch(function: "f", requestID: "r\(number)", texts: [text], time: Int64(number))
                )
            )
        }
        let lines = recent.lines(of: "f")
        #expect(lines.count > 200 && lines.count < 260)
        #expect(lines.reduce(0) { $0 + $1.text.utf8.count + ($1.requestID?.utf8.count ?? 0) + 13 } <= 256 * 1024)
        for (index, line) in lines.enumerated() {
            let number = 1000 - lines.count + index
            #expect(line.requestID == "r\(number)" && line.time == Int64(number))
            #expect(
                line.text.hasPrefix("\(number) ") && line.text.utf8.count == "\(number) ".utf8.count + 1000 + number % 7
            )
        }
    }
}
