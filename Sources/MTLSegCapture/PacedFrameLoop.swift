#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The clock of a source that makes its own frames (a folder, a synthetic field): frame n is due
/// at start + n / fps; a late frame is not made up for (the next is due one interval after it).
struct PacedFrameLoop {
    let interval: Double
    private var due: UInt64 = Clock.monotonicNanoseconds()

    init(framesPerSecond: Double) {
        interval = 1 / max(framesPerSecond, 0.001)
    }

    /// Sleeps until the next frame is due; false when stop was requested meanwhile.
    mutating func waitForNext(_ thread: StoppableThread) -> Bool {
        let now = Clock.monotonicNanoseconds()
        if due > now, !thread.sleep(seconds: Double(due - now) / 1e9) { return false }
        let step = UInt64(interval * 1e9)
        due = max(due + step, Clock.monotonicNanoseconds())
        return !thread.shouldStop
    }
}
