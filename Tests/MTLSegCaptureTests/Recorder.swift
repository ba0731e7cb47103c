import Foundation
import MTLSegCapture
import XCTest

/// Collects what a source delivers and reports, from its thread, for assertions on the test's.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var _frames: [Frame] = []
    private var _states: [SourceState] = []
    private var stopped = false
    private var _lateFrames = 0

    var frames: [Frame] { lock.lock(); defer { lock.unlock() }; return _frames }
    var states: [SourceState] { lock.lock(); defer { lock.unlock() }; return _states }
    var sequences: [UInt64] { frames.map(\.sequence) }
    /// Frames delivered after `markStopped`.
    var lateFrames: Int { lock.lock(); defer { lock.unlock() }; return _lateFrames }

    func start(_ source: FrameSource) {
        source.start(deliver: { [self] frame in
                         lock.lock()
                         _frames.append(frame)
                         if stopped { _lateFrames += 1 }
                         lock.unlock()
                     },
                     stateChanged: { [self] state in lock.lock(); _states.append(state); lock.unlock() })
    }

    /// Call once the source's `stop` has returned: a frame delivered after it counts as late.
    func markStopped() { lock.lock(); stopped = true; lock.unlock() }

    /// Whether no thread of this process has the name `name` within `seconds` (checked every 5 ms).
    /// Once a source's thread is gone, nothing can deliver any more: a check for "nothing after
    /// stop" that waits for that instead of a fixed time.
    static func threadEnds(_ name: String, seconds: Double = 5) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while true {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            let names = tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            if !names.contains(name + "\n") { return true }
            if Date() > deadline { return false }
            usleep(5000)
        }
    }

    /// Waits until `condition` holds (checked every 5 ms), failing the test after `seconds`.
    func wait(_ what: String, seconds: Double = 5, file: StaticString = #filePath, line: UInt = #line,
              until condition: (Recorder) -> Bool) {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !condition(self) {
            if Date() > deadline {
                XCTFail("timed out waiting for \(what); states \(states), sequences \(sequences)", file: file, line: line)
                return
            }
            usleep(5000)
        }
    }
}
