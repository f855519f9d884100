import Synchronization
import Testing

@testable import GalleyHost

/// The watchdog holds only what is still running: an entry whose work ends first is withdrawn.
struct WatchdogTests {
    @Test func aCancelledTicketIsWithdrawnAndTheOthersKeepTheirPlaces() {
        let fired = Atomic<Int>(0)
        let deadline = ContinuousClock.now + .seconds(600)
        // Spread over a few buckets, several entries in each.
        let tickets = (0..<200).map { index in
            Watchdog.shared.schedule(at: deadline + .milliseconds(10 * (index % 5))) {
                fired.add(1, ordering: .relaxed)
            }
        }
        var random = SystemRandomNumberGenerator()
        let order = tickets.indices.shuffled(using: &random)
        for (step, index) in order.enumerated() {
            tickets[index].cancel()
            #expect(!Watchdog.shared.holds(tickets[index]))
            // Every ticket not cancelled yet is still where it was put, or was moved and knows it.
            if step % 37 == 0 {
                for other in order[(step + 1)...] { #expect(Watchdog.shared.holds(tickets[other])) }
            }
        }
        #expect(fired.load(ordering: .relaxed) == 0)
    }

    @Test func aRaceThatEndsBeforeItsDeadlineIsNotKept() {
        let race = DeadlineRace<Int>()
        Watchdog.shared.schedule(at: .now + .seconds(600), race)
        #expect(Watchdog.shared.holds(race))
        race.settle(.success(1))
        #expect(!Watchdog.shared.holds(race))
    }

    @Test func dueEntriesFireOnceAndWithdrawnOnesNever() async throws {
        let fired = Mutex<[Int]>([])
        let tickets = (0..<100).map { index in
            Watchdog.shared.schedule(at: .now - .seconds(1)) { fired.withLock { $0.append(index) } }
        }
        for index in stride(from: 0, to: 100, by: 2) { tickets[index].cancel() }
        let kept = Set(stride(from: 1, to: 100, by: 2))
        // Polled with a deadline: the watchdog fires a due bucket within its 10 ms, on a loaded
        // machine later, and a ticket cancelled after it fired has fired once.
        let end = ContinuousClock.now + .seconds(30)
        while tickets.contains(where: { Watchdog.shared.holds($0) }), ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(5))
        }
        let calls = fired.withLock { $0 }
        #expect(Set(calls).count == calls.count, "a ticket fired twice")
        #expect(Set(calls).isSuperset(of: kept), "a ticket that was not cancelled did not fire")
    }
}
