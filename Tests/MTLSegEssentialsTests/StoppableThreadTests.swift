import Foundation
import MTLSegEssentials
import XCTest

final class StoppableThreadTests: XCTestCase {
    /// Linux keeps 15 bytes of a thread's name: a name with a variable part is cut to fit, at a
    /// character boundary.
    func testNamesFitWhatLinuxKeeps() {
        XCTAssertEqual(SystemThread.name("cap-", "video0"), "cap-video0")
        XCTAssertEqual(SystemThread.name("cap-", "usb-Logitech-C920-video-index0"), "cap-usb-Logitec")
        XCTAssertEqual(SystemThread.name("cap-", "ééééééééé").utf8.count, 14, "a two-byte character that does not fit is left out whole")
    }

    /// A stop cuts a sleep short and returns only after the body has returned; the name is the
    /// thread's own, as /proc shows it.
    func testStopWakesTheSleeperAndJoins() {
        let thread = StoppableThread()
        let lock = NSLock()
        var sleeps = 0, returned = false, name = ""
        let started = DispatchSemaphore(value: 0)
        thread.start(name: "test-stoppable") { thread in
            name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            started.signal()
            while thread.sleep(seconds: 60) {
                lock.lock(); sleeps += 1; lock.unlock()
            }
            lock.lock(); returned = true; lock.unlock()
        }
        started.wait()
        thread.stop()
        lock.lock()
        XCTAssertTrue(returned, "stop returned before the body did")
        XCTAssertEqual(sleeps, 0, "the sleep ran out instead of being cut short")
        lock.unlock()
        XCTAssertEqual(name, "test-stoppable\n")
        XCTAssertTrue(thread.shouldStop)
        thread.stop()  // a second stop returns at once
    }

    /// `wake` runs after the request, so a body blocked elsewhere sees the request when woken; and
    /// the thread starts again after a stop.
    func testWakeUnblocksAndTheThreadRestarts() {
        let thread = StoppableThread()
        for round in 0 ..< 2 {
            let gate = DispatchSemaphore(value: 0)
            var sawStop = false
            thread.start(name: "test-wake") { thread in
                gate.wait()
                sawStop = thread.shouldStop
            }
            XCTAssertFalse(thread.shouldStop, "round \(round): a new start clears the request")
            thread.stop(wake: { gate.signal() })
            XCTAssertTrue(sawStop, "round \(round)")
        }
    }
}
