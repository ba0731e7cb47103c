#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

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
