#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture

/// One frame between capture and inference: a new frame replaces one not yet
/// taken, so inference always starts on the newest picture and nothing queues.
final class LatestFrameSlot: @unchecked Sendable {
    private let condition = Condition()
    private var frame: Frame?
    private var closed = false

    /// Puts `frame` in; true if it replaced one that inference never took.
    @discardableResult
    func put(_ frame: Frame) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let replaced = self.frame != nil
        self.frame = frame
        condition.signal()
        return replaced
    }

    /// The newest frame, waiting up to `timeout` seconds; nil on timeout or once closed.
    func take(timeout: Double) -> Frame? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Clock.monotonicDeadline(in: timeout)
        while frame == nil && !closed {
            if !condition.wait(until: deadline) { break }
        }
        defer { frame = nil }
        return closed ? nil : frame
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
