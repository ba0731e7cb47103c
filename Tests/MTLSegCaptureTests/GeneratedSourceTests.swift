import Foundation
@testable import MTLSegCapture
import MTLSegImage
import XCTest

/// The sources that make their own frames: an image folder and the synthetic field.
final class GeneratedSourceTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-capture-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func testSyntheticFieldDeliversIncreasingFramesOfTheRightSizeAndStops() {
        let source = SyntheticFieldSource(width: 160, height: 120, framesPerSecond: 100, seed: 3)
        let recorder = Recorder()
        recorder.start(source)
        recorder.wait("five frames") { $0.frames.count >= 5 }
        source.stop()
        recorder.markStopped()
        let count = recorder.frames.count
        XCTAssertEqual(recorder.sequences, Array(0 ..< UInt64(count)))
        XCTAssertTrue(recorder.frames.allSatisfy { $0.width == 160 && $0.height == 120 && $0.pixels.count == 160 * 120 * 3 })
        XCTAssertEqual(source.state, .stopped)
        XCTAssertEqual(recorder.states, [.starting, .streaming, .stopped])
        XCTAssertTrue(Recorder.threadEnds("cap-synthetic"), "the source's thread outlived stop")
        XCTAssertEqual(recorder.lateFrames, 0, "nothing after stop")
        XCTAssertEqual(recorder.frames.count, count, "nothing after stop")
        XCTAssertEqual(source.counters.captured, UInt64(count))
    }

    func testSyntheticFieldIsDeterministicLooksLikeAFieldAndMoves() {
        let a = SyntheticFieldSource(width: 200, height: 150, seed: 42)
        let b = SyntheticFieldSource(width: 200, height: 150, seed: 42)
        let c = SyntheticFieldSource(width: 200, height: 150, seed: 43)
        XCTAssertEqual(a.render(frame: 5), b.render(frame: 5))
        XCTAssertNotEqual(a.render(frame: 5), c.render(frame: 5))
        XCTAssertNotEqual(a.render(frame: 0), a.render(frame: 1), "the field scrolls")
        // Frame 1 is frame 0 moved down by `pixelsPerFrame` rows (the drift is below a pixel this early).
        let f0 = a.render(frame: 0), f1 = a.render(frame: 1), row = 200 * 3
        XCTAssertEqual(Array(f1[(3 * row) ..< (100 * row)]), Array(f0[0 ..< (97 * row)]))
        // Plants (green dominant) and soil (red dominant) both cover a good part of the view.
        var green = 0, soil = 0
        for p in stride(from: 0, to: f0.count, by: 3) {
            if f0[p + 1] > f0[p] + 30 { green += 1 } else if f0[p] > f0[p + 2] + 30 { soil += 1 }
        }
        let pixels = 200 * 150
        XCTAssertGreaterThan(green, pixels / 10, "plants")
        XCTAssertGreaterThan(soil, pixels / 3, "soil")
    }

    func testImageFolderLoopsInNameOrderAndSkipsUnreadableFilesWithOneWarning() throws {
        for (name, value) in [("b.png", UInt8(20)), ("a.png", 10), ("c.png", 30)] {
            try ImageFile.writePNG(RGBImage(width: 4, height: 3, pixels: [UInt8](repeating: value, count: 36)), path: "\(folder!)/\(name)")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(folder!)/broken.jpg"))
        try Data("ignored".utf8).write(to: URL(fileURLWithPath: "\(folder!)/notes.txt"))
        let warnings = Recorder.Lines()
        let source = try ImageFolderSource(folder: folder, framesPerSecond: 200, warn: { warnings.append($0) })
        XCTAssertEqual(source.paths.map { ($0 as NSString).lastPathComponent }, ["a.png", "b.png", "broken.jpg", "c.png"])
        let recorder = Recorder()
        recorder.start(source)
        recorder.wait("seven frames") { $0.frames.count >= 7 }
        source.stop()
        XCTAssertEqual(Array(recorder.frames.prefix(7).map { $0.pixels[0] }), [10, 20, 30, 10, 20, 30, 10])
        XCTAssertEqual(recorder.sequences, Array(0 ..< UInt64(recorder.frames.count)))
        XCTAssertEqual(recorder.frames[0].width, 4)
        XCTAssertEqual(warnings.lines.count, 1, "\(warnings.lines)")
        XCTAssertTrue(warnings.lines.first?.contains("broken.jpg") == true)
        XCTAssertEqual(source.state, .stopped)
    }

    func testImageFolderWithoutImagesIsAnErrorNamingIt() throws {
        XCTAssertThrowsError(try ImageFolderSource(folder: folder)) { error in
            XCTAssertEqual(String(describing: error), "\(folder!): no .png, .jpg or .jpeg files")
        }
    }
}

extension Recorder {
    /// Lines a source writes as warnings.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var _lines: [String] = []
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }
        func append(_ line: String) { lock.lock(); _lines.append(line); lock.unlock() }
    }
}
