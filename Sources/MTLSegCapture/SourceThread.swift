#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// A source's own thread, with a stop request it can wait on: `sleep` returns early when `stop` is
/// called, and `stop` returns only after the body has finished (a join).
final class SourceThread {
    private let condition = Condition()
    private var stopRequested = false
    private var running = false

    /// Starts `body` on a new thread; it should return soon after `shouldStop` becomes true.
    func start(name: String, body: @escaping (SourceThread) -> Void) {
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

    var shouldStop: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopRequested
    }

    /// Sleeps up to `seconds`; returns false if stop was requested (at once or meanwhile).
    @discardableResult
    func sleep(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: max(0, seconds))
        condition.lock()
        defer { condition.unlock() }
        while !stopRequested {
            if !condition.wait(until: deadline) { break }
        }
        return !stopRequested
    }

    /// Asks the body to finish and waits until it has.
    func stop() {
        condition.lock()
        stopRequested = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }
}

/// State and counters shared between a source's thread and its readers.
final class SourceStatus {
    private let lock = Lock()
    private var _state: SourceState = .stopped
    private var _counters = SourceCounters()
    private var stateChanged: (@Sendable (SourceState) -> Void)?

    var state: SourceState { lock.lock(); defer { lock.unlock() }; return _state }
    var counters: SourceCounters { lock.lock(); defer { lock.unlock() }; return _counters }

    func reset(stateChanged: (@Sendable (SourceState) -> Void)?) {
        lock.lock()
        self.stateChanged = stateChanged
        lock.unlock()
    }

    /// Sets the state and reports it, only if it changed.
    func set(_ state: SourceState) {
        lock.lock()
        let changed = _state != state
        _state = state
        let report = stateChanged
        lock.unlock()
        if changed { report?(state) }
    }

    func update(_ change: (inout SourceCounters) -> Void) {
        lock.lock()
        change(&_counters)
        lock.unlock()
    }
}
