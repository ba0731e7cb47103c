import Foundation
import MTLSegCapture
import XCTest

/// Collects what a source delivers and reports, from its thread, for assertions on the test's.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var _frames: [Frame] = []
    private var _states: [SourceState] = []

    var frames: [Frame] { lock.lock(); defer { lock.unlock() }; return _frames }
    var states: [SourceState] { lock.lock(); defer { lock.unlock() }; return _states }
    var sequences: [UInt64] { frames.map(\.sequence) }

    func start(_ source: FrameSource) {
        source.start(deliver: { [self] frame in lock.lock(); _frames.append(frame); lock.unlock() },
                     stateChanged: { [self] state in lock.lock(); _states.append(state); lock.unlock() })
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
