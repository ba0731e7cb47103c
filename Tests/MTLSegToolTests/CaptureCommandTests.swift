import Foundation
import XCTest

/// `mtlseg capture` into a folder that already holds frames, and its option checks.
final class CaptureCommandTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-capture-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func capture(_ count: Int, extra: [String] = []) throws -> ToolRunner.Result {
        try ToolRunner.run(["capture", "--device", "synthetic", "--count", "\(count)", "--out", folder, "--fps", "60"] + extra)
    }

    /// A second capture adds to the set in the folder: its frames are numbered after the highest one there, and the first
    /// capture's files are left as they were.
    func testASecondCaptureContinuesTheNumbering() throws {
        let first = try capture(2)
        XCTAssertEqual(first.status, 0, first.errors)
        let firstFrame = try Data(contentsOf: URL(fileURLWithPath: folder + "/frame-000001.png"))
        // A gap and a file of another name do not confuse it: numbering goes on after the highest frame-N.png.
        try FileManager.default.moveItem(atPath: folder + "/frame-000002.png", toPath: folder + "/frame-000007.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: folder + "/frame-notes.png"))
        let second = try capture(2)
        XCTAssertEqual(second.status, 0, second.errors)
        XCTAssertTrue(second.output.contains("frames up to frame-000007.png"), second.output)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertEqual(names, ["frame-000001.png", "frame-000007.png", "frame-000008.png", "frame-000009.png", "frame-notes.png"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/frame-000001.png")), firstFrame)
    }

    func testATimeoutThatIsNotPositiveIsRefused() throws {
        for timeout in ["0", "-1"] {
            let result = try capture(1, extra: ["--timeout=\(timeout)"])
            XCTAssertNotEqual(result.status, 0, timeout)
            XCTAssertTrue(result.errors.contains("--timeout must be positive"), result.errors)
        }
    }
}
