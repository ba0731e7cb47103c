import Foundation
import MTLSegCore
import MTLSegImage
import XCTest

final class CalibrateCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-calibrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("images"), withIntermediateDirectories: true)
        // Ten variations of the fixture's image, and one corrupt file.
        let reference = try SafeTensorsFile(path: ToolRunner.fixture("mtl2-tiny.reference.safetensors"))
        let entry = try XCTUnwrap(reference.entry("image"))
        let pixels = try reference.integers(entry).map { UInt8($0) }
        for variant in 0 ..< 10 {
            let shifted = pixels.indices.map { UInt8(clamping: Int(pixels[($0 + variant * 3 * 7) % pixels.count]) + variant * 9 - 40) }
            try ImageFile.writePNG(RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: shifted),
                                   path: directory.appendingPathComponent("images/field-\(variant).png").path)
        }
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("images/broken.png"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testCalibrateWritesTheModelAndBothReports() throws {
        let out = directory.appendingPathComponent("int8.safetensors").path
        let result = try ToolRunner.run(["calibrate", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"),
                                         "--images", directory.appendingPathComponent("images").path, "--out", out, "--method", "percentile"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertTrue(result.errors.contains("broken.png"), "the corrupt image is named: \(result.errors)")
        let source = try ModelSource(path: out)
        XCTAssertEqual(source.quantization?.calibration.method, "percentile(99.99)")
        XCTAssertEqual((source.quantization?.calibration.images ?? 0) + (source.quantization?.calibration.evalImages ?? 0), 10)
        let report = try String(contentsOfFile: directory.appendingPathComponent("int8.report.md").path, encoding: .utf8)
        XCTAssertTrue(report.contains("agreement-mIoU"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("int8.report.json"))) as? [String: Any]
        XCTAssertEqual((json?["tasks"] as? [[String: Any]])?.count, 2)
        XCTAssertEqual((json?["skipped_images"] as? [String])?.count, 1)
        let inspect = try ToolRunner.run(["inspect", "--model", out])
        XCTAssertTrue(inspect.output.contains("percentile(99.99) ranges"), inspect.output)
    }

    func testAnImpossibleBudgetExitsNonZeroAndReportsWhy() throws {
        let out = directory.appendingPathComponent("int8.safetensors").path
        let result = try ToolRunner.run(["calibrate", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"),
                                         "--images", directory.appendingPathComponent("images").path, "--out", out, "--max-drop", "0"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("budget not held"), result.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no model is written when the budget fails")
        let report = try String(contentsOfFile: directory.appendingPathComponent("int8.report.md").path, encoding: .utf8)
        XCTAssertTrue(report.contains("budget not held"), report)
    }

    func testNoUsableImageIsAnError() throws {
        let empty = directory.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: empty.appendingPathComponent("a.png"))
        try Data("y".utf8).write(to: empty.appendingPathComponent("b.jpg"))
        let result = try ToolRunner.run(["calibrate", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--images", empty.path,
                                         "--out", directory.appendingPathComponent("x.safetensors").path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("could be read"), result.errors)
    }
}
