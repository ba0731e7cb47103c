import Foundation
import MTLSegEssentials
import MTLSegCapture

/// Frames of a moving gradient at a fixed rate, for daemon tests.
final class TestFrameSource: FrameSource, @unchecked Sendable {
    let name = "test pattern"
    private let width: Int, height: Int, interval: Double
    private let lock = NSLock()
    private var running = false
    private var statistics = SourceCounters()
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    init(width: Int, height: Int, fps: Double) {
        self.width = width
        self.height = height
        interval = 1 / fps
    }

    var counters: SourceCounters {
        lock.lock()
        defer { lock.unlock() }
        return statistics
    }

    var state: SourceState { .streaming }

    func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void) {
        lock.lock()
        running = true
        lock.unlock()
        let thread = Thread { [self] in
            var sequence: UInt64 = 0
            while true {
                lock.lock()
                let go = running
                lock.unlock()
                guard go else { break }
                var pixels = [UInt8](repeating: 0, count: width * height * 3)
                for i in 0 ..< pixels.count { pixels[i] = UInt8(truncatingIfNeeded: i / 3 + Int(sequence) * 7) }
                deliver(Frame(width: width, height: height, pixels: pixels, sequence: sequence,
                              monotonicNanoseconds: Clock.monotonicNanoseconds(), realtimeNanoseconds: Clock.realtimeNanoseconds()))
                lock.lock()
                statistics.captured += 1
                lock.unlock()
                sequence += 1
                Thread.sleep(forTimeInterval: interval)
            }
            finished.signal()
        }
        self.thread = thread
        thread.start()
    }

    func stop() {
        lock.lock()
        running = false
        lock.unlock()
        if thread != nil { finished.wait() }
        thread = nil
    }
}
