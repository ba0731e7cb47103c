#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// A named thread that runs until it is asked to stop, the shape of every long-lived thread in the
/// daemon: the body checks `shouldStop` between units of work (or sleeps with `sleep`, which a stop
/// cuts short), and `stop` returns only once the body has returned (a join). It can be started
/// again after a stop.
public final class StoppableThread: @unchecked Sendable {
    private let condition = Condition()
    private var stopRequested = false
    private var running = false

    public init() {}

    /// Starts `body` on a new thread named `name` (at most 15 bytes, what Linux keeps; see
    /// `SystemThread.name`); the body should return soon after `shouldStop` becomes true.
    public func start(name: String, body: @escaping (StoppableThread) -> Void) {
        precondition(name.utf8.count <= SystemThread.maximumNameBytes, "thread name '\(name)' is longer than 15 bytes")
        condition.lock()
        precondition(!running, "\(name): started twice")
        running = true
        stopRequested = false
        condition.unlock()
        let thread = SystemThread { [self] in
            body(self)
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    public var shouldStop: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopRequested
    }

    /// Sleeps up to `seconds`; returns false if a stop was requested (before or meanwhile).
    @discardableResult
    public func sleep(seconds: Double) -> Bool {
        let deadline = Clock.monotonicDeadline(in: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !stopRequested {
            if !condition.wait(until: deadline) { break }
        }
        return !stopRequested
    }

    /// Asks the body to finish, calls `wake` (to unblock whatever the body may be waiting in: a
    /// socket, a frame slot), and waits until the body has returned. A thread never started, or
    /// already stopped, returns at once.
    public func stop(wake: () -> Void = {}) {
        condition.lock()
        stopRequested = true
        condition.broadcast()
        condition.unlock()
        wake()
        condition.lock()
        while running { condition.wait() }
        condition.unlock()
    }
}
