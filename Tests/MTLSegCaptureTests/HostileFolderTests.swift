import Foundation
@testable import MTLSegCapture
import MTLSegImage
import XCTest

/// An image folder holding what should not be there (issue #17, class 3): a FIFO named like an image (from
/// the start, or swapped in after the folder was listed) and a decompression bomb. The source skips each
/// with one warning, keeps streaming the good image, and stops at once when asked.
final class HostileFolderTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-hostile-folder-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

    /// A 1×1 PNG whose header declares 16384×16384 (CRC fixed).
    private func bomb() throws -> [UInt8] {
        var bytes = try ImageFile.encodeGrayPNG(width: 1, height: 1, pixels: [0])
        for offset in [16, 20] { bytes.replaceSubrange(offset ..< offset + 4, with: [0, 0, 0x40, 0]) }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes[12 ..< 29] {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        crc = ~crc
        bytes.replaceSubrange(29 ..< 33, with: (0 ..< 4).map { UInt8((crc >> (24 - 8 * UInt32($0))) & 0xFF) })
        return bytes
    }

    func testFIFOsAndBombsAreSkippedOnceAndNeverBlockTheSourceOrItsStop() throws {
        XCTAssertEqual(mkfifo(path("a.png"), 0o644), 0)
        try ImageFile.writePNG(RGBImage(width: 2, height: 2, pixels: Array(repeating: 9, count: 12)), path: path("b.png"))
        try Data(bomb()).write(to: URL(fileURLWithPath: path("c.png")))
        try ImageFile.writePNG(RGBImage(width: 8, height: 6, pixels: Array(repeating: 200, count: 8 * 6 * 3)), path: path("d.png"))
        let warnings = Warnings()
        let source = try ImageFolderSource(folder: folder, framesPerSecond: 200, warn: { warnings.add($0) })
        XCTAssertEqual(source.paths.map { ($0 as NSString).lastPathComponent }, ["b.png", "c.png", "d.png"], "the FIFO is not listed")
        // b.png becomes a FIFO after the listing: the read must not wait for a writer.
        try FileManager.default.removeItem(atPath: path("b.png"))
        XCTAssertEqual(mkfifo(path("b.png"), 0o644), 0)

        let recorder = Recorder()
        recorder.start(source)
        recorder.wait("twelve frames, several laps of the folder", seconds: 20) { $0.frames.count >= 12 }
        XCTAssertTrue(recorder.frames.allSatisfy { $0.width == 8 && $0.height == 6 }, "only the good image is delivered")
        XCTAssertEqual(source.state, .streaming)
        let lines = warnings.lines
        XCTAssertEqual(lines.count, 2, "one warning per bad file, not one per lap: \(lines)")
        XCTAssertTrue(lines.contains { $0.contains("b.png") && $0.contains("not a regular file") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("c.png") && $0.contains("pixel budget") }, "\(lines)")

        let stopped = DispatchSemaphore(value: 0)
        Thread { source.stop(); stopped.signal() }.start()
        XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success, "stop did not return within 10 s")
        XCTAssertEqual(source.state, .stopped)
    }

    /// A folder whose images all fail to read is refused when the source is made (so start-up and --check-config fail),
    /// not left to stall with no frame.
    func testAFolderWhoseImagesAllFailIsRefusedAtOnce() throws {
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: path("a.png")))
        try Data("nor this".utf8).write(to: URL(fileURLWithPath: path("b.jpg")))
        XCTAssertThrowsError(try ImageFolderSource(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("\(folder!): none of its 2 images reads") && "\(error)".contains("a.png"), "\(error)")
        }
    }

    /// Images that stop reading while the source runs stall it; an image put in the folder then is taken up (the folder
    /// is listed again), and each bad file is still warned of once.
    func testAStalledFolderTakesUpAnImagePutThereLater() throws {
        try ImageFile.writePNG(RGBImage(width: 4, height: 3, pixels: Array(repeating: 50, count: 36)), path: path("a.png"))
        let warnings = Warnings()
        let source = try ImageFolderSource(folder: folder, framesPerSecond: 100, warn: { warnings.add($0) })
        let recorder = Recorder()
        recorder.start(source)
        defer { source.stop() }
        recorder.wait("a first frame", seconds: 20) { !$0.frames.isEmpty }
        try Data("broken now".utf8).write(to: URL(fileURLWithPath: path("a.png")))
        recorder.wait("the source stalls", seconds: 20) { _ in
            if case .stalled = source.state { return true } else { return false }
        }
        try ImageFile.writePNG(RGBImage(width: 6, height: 5, pixels: Array(repeating: 90, count: 90)), path: path("b.png"))
        recorder.wait("a frame of the new image", seconds: 20) { $0.frames.contains { $0.width == 6 && $0.height == 5 } }
        XCTAssertEqual(source.state, .streaming)
        XCTAssertEqual(warnings.lines.count, 1, "a.png warned of once, though tried at each listing: \(warnings.lines)")
    }

    func testAFolderOfOnlyFIFOsHasNoImages() throws {
        XCTAssertEqual(mkfifo(path("x.png"), 0o644), 0)
        XCTAssertThrowsError(try ImageFolderSource(folder: folder)) { XCTAssertTrue("\($0)".contains(folder), "\($0)") }
    }
}

private final class Warnings: @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }
    func add(_ line: String) { lock.lock(); _lines.append(line); lock.unlock() }
}
