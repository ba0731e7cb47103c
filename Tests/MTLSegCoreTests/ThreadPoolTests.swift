import CKernels
import Foundation
@testable import MTLSegCore
import XCTest

/// The pool hands every part of every operation to exactly one thread, whether its threads
/// spin between operations, sleep, or are woken from sleep.
final class ThreadPoolTests: XCTestCase {
    /// Counts how often each part of one operation ran.
    private final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int]
        init(_ parts: Int) { counts = Array(repeating: 0, count: parts) }
        func add(_ part: Int) { lock.lock(); counts[part] += 1; lock.unlock() }
        var all: [Int] { lock.lock(); defer { lock.unlock() }; return counts }
    }

    private func assertEveryPartRunsOnce(_ pool: ThreadPool, operations: Int, pauseMicroseconds: UInt32 = 0,
                                         file: StaticString = #filePath, line: UInt = #line) {
        for operation in 0 ..< operations {
            let parts = 1 + operation % 9
            let tally = Tally(parts)
            pool.run(parts: parts) { part, _ in tally.add(part) }
            if tally.all != Array(repeating: 1, count: parts) {
                return XCTFail("operation \(operation): parts ran \(tally.all) times", file: file, line: line)
            }
            if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
        }
    }

    /// Each worker shows its whole name in `top -H` (Linux keeps 15 bytes).
    func testWorkersAreNamedByTheirIndex() {
        let pool = ThreadPool(threads: 3)
        let lock = NSLock()
        var names: [Int: String] = [:]
        let deadline = Date().addingTimeInterval(10)
        while names.count < 2 && Date() < deadline {
            pool.run(parts: 64) { _, thread in
                guard thread > 0 else { return }
                let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
                lock.lock(); names[thread] = name; lock.unlock()
                usleep(100)  // leave parts for the other worker
            }
        }
        XCTAssertEqual(names, [1: "worker-1\n", 2: "worker-2\n"])
    }

    func testSpinningWorkersRunEveryPartOnce() {
        assertEveryPartRunsOnce(ThreadPool(threads: 3), operations: 20000)
    }

    func testSleepingWorkersRunEveryPartOnce() {
        assertEveryPartRunsOnce(ThreadPool(threads: 3, spinMicroseconds: 0), operations: 3000)
    }

    /// Pauses longer than the spin, so every operation starts with the workers asleep.
    func testWorkersWokenFromSleepRunEveryPartOnce() {
        assertEveryPartRunsOnce(ThreadPool(threads: 2, spinMicroseconds: 20), operations: 200, pauseMicroseconds: 500)
    }

    /// Ranges cover the items once, start on the alignment, hold as many aligned units as each other within one
    /// (so the threads' shares are even), and a thread's slot is never in use twice at once (each thread's
    /// scratch memory is its own).
    func testRangesCoverTheItemsAlignedAndSlotsAreNeverShared() {
        let pool = ThreadPool(threads: 2)
        final class Slots: @unchecked Sendable {
            let lock = NSLock()
            var ranges: [Range<Int>] = []
            var busy = [false, false]
            var clashes = 0
            func enter(_ slot: Int, _ range: Range<Int>) {
                lock.lock(); defer { lock.unlock() }
                ranges.append(range)
                if busy[slot] { clashes += 1 }
                busy[slot] = true
            }
            func leave(_ slot: Int) { lock.lock(); busy[slot] = false; lock.unlock() }
        }
        for count in [1, 2, 15, 16, 17, 57, 100, 1000, 16384] {
            for alignment in [1, 16] {
                let slots = Slots()
                pool.runSlots(count: count, alignment: alignment) { range, slot in
                    slots.enter(slot, range)
                    for _ in 0 ..< 200 { ck_cpu_relax() }  // long enough for the other thread to take a part meanwhile
                    slots.leave(slot)
                }
                let ranges = slots.ranges.sorted { $0.lowerBound < $1.lowerBound }
                XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0 ..< count), "count \(count), alignment \(alignment)")
                XCTAssertTrue(ranges.allSatisfy { $0.lowerBound % alignment == 0 })
                let units = ranges.map { ($0.count + alignment - 1) / alignment }
                XCTAssertLessThanOrEqual(units.max()! - units.min()!, 1, "uneven ranges for count \(count), alignment \(alignment): \(ranges)")
                XCTAssertEqual(slots.clashes, 0, "a slot ran two ranges at once")
            }
        }
    }

    /// Each thread starts on its own share of the parts (thread t the t-th contiguous share), and a thread that is
    /// held up has the rest of its share taken by the others.
    func testThreadsStartOnTheirOwnShareAndTakeOverAHeldUpOne() {
        let pool = ThreadPool(threads: 2)
        final class Runs: @unchecked Sendable {
            let lock = NSLock()
            var thread = [Int](repeating: -1, count: 8)
            var first = [Int](repeating: -1, count: 2)
            var others = 0
            var heldUntilTheOthersRan = false
            let othersRan = DispatchSemaphore(value: 0)
            func ran(_ part: Int, on t: Int) {
                lock.lock(); defer { lock.unlock() }
                thread[part] = t
                if first[t] < 0 { first[t] = part }
                if part != 0 { others += 1; if others == 7 { othersRan.signal() } }
            }
        }
        let runs = Runs()
        pool.run(parts: 8) { part, thread in
            runs.ran(part, on: thread)
            // The caller (thread 0) is held up on its first part until every other part has started: a gate, not a
            // sleep, so that thread 1 taking the rest of thread 0's share is the only way on. A pool where it cannot
            // runs into the deadline, and thread 0 then runs its own parts, which the check below reports.
            if part == 0 { runs.heldUntilTheOthersRan = runs.othersRan.wait(timeout: .now() + 10) == .success }
        }
        XCTAssertTrue(runs.heldUntilTheOthersRan, "parts 1 to 7 did not all start while thread 0 was held on part 0")
        XCTAssertEqual(runs.first, [0, 4], "each thread's first part is the first of its share")
        XCTAssertEqual(runs.thread[0], 0)
        XCTAssertEqual(Array(runs.thread[1 ..< 8]), Array(repeating: 1, count: 7), "thread 1 ran its share and the rest of thread 0's")
    }
}
