import Foundation
import MTLSegEssentials
import MTLSegWire

/// Reads one client's frames on a thread of its own and notes when each arrived.
final class FrameReader: @unchecked Sendable {
    private let client: WireClient
    private let condition = NSCondition()
    private var received: [(sequence: UInt64, captured: UInt64, arrived: UInt64)] = []
    private var stopping = false
    private var error: String?
    private let finished = DispatchSemaphore(value: 0)

    init(_ client: WireClient) {
        self.client = client
        Thread { [self] in
            while true {
                condition.lock()
                let done = stopping
                condition.unlock()
                if done { break }
                do {
                    guard case let .frame(frame) = try client.next(timeout: 1) else { continue }
                    condition.lock()
                    received.append((frame.sequence, frame.captureMonotonicNanoseconds, Clock.monotonicNanoseconds()))
                    condition.broadcast()
                    condition.unlock()
                } catch WireClient.Failure.timeout {
                    continue
                } catch {
                    condition.lock()
                    self.error = "\(error)"
                    condition.broadcast()
                    condition.unlock()
                    break
                }
            }
            finished.signal()
        }.start()
    }

    /// When (CLOCK_MONOTONIC) the first frame captured after `after` arrived; nil if none in `seconds`.
    func waitForFrame(capturedAfter after: UInt64, seconds: Double) -> UInt64? {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let hit = received.first(where: { $0.captured > after }) { return hit.arrived }
            if error != nil || !condition.wait(until: deadline) { return nil }
        }
    }

    /// Frames captured (the daemon's CLOCK_MONOTONIC stamp) in [from, to): the camera's rate as the client saw it.
    func count(capturedFrom from: UInt64, to: UInt64) -> Int {
        condition.lock(); defer { condition.unlock() }
        return received.count { $0.captured >= from && $0.captured < to }
    }

    var sequences: [UInt64] { condition.lock(); defer { condition.unlock() }; return received.map(\.sequence) }
    var failed: Bool { condition.lock(); defer { condition.unlock() }; return error != nil }
    var failure: String { condition.lock(); defer { condition.unlock() }; return error ?? "" }

    func stop() {
        condition.lock()
        let running = !stopping && error == nil
        stopping = true
        condition.unlock()
        if running { finished.wait() }
    }
}
