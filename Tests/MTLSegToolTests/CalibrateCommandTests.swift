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
        let report = try String(contentsOfFile: directory.appendingPathComponent("int8.report.failed.md").path, encoding: .utf8)
        XCTAssertTrue(report.contains("budget not held"), report)
        XCTAssertTrue(result.output.contains("int8.report.failed.md"), result.output)
    }

    /// A run that fails its budget leaves an earlier model at --out and that model's report as they were.
    func testAFailedBudgetKeepsTheEarlierModelAndItsReport() throws {
        let out = directory.appendingPathComponent("kept.safetensors").path
        let earlierReport = directory.appendingPathComponent("kept.report.md").path
        try Data("an earlier model".utf8).write(to: URL(fileURLWithPath: out))
        try Data("its report".utf8).write(to: URL(fileURLWithPath: earlierReport))
        let result = try calibrate(["--max-drop", "0"], out: out)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "an earlier model")
        XCTAssertEqual(try String(contentsOfFile: earlierReport, encoding: .utf8), "its report")
        let failed = try String(contentsOfFile: directory.appendingPathComponent("kept.report.failed.md").path, encoding: .utf8)
        XCTAssertTrue(failed.contains("budget not held"), failed)
        // A run that holds its budget then replaces the model and its report, and takes the failed report away.
        let held = try calibrate([], out: out)
        XCTAssertEqual(held.status, 0, held.errors)
        XCTAssertNotEqual(try String(contentsOfFile: earlierReport, encoding: .utf8), "its report")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("kept.report.failed.md").path))
    }

    /// Output paths are checked before any work: empty, a folder by its spelling, or a report that would be the model.
    func testOutputPathsThatCannotBeTheFilesAreRefusedAtOnce() throws {
        let folder = directory.appendingPathComponent("out").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let cases: [(out: String, extra: [String], expected: String)] = [
            ("", [], "--out is empty"),
            (folder + "/", [], "names a folder"),
            (folder + "/m.json", ["--report", folder + "/m"], "replacing the model"),
        ]
        for (out, extra, expected) in cases {
            let result = try calibrate(extra, out: out)
            XCTAssertNotEqual(result.status, 0, out)
            XCTAssertTrue(result.errors.contains(expected), "\(out) \(extra): \(result.errors)")
            XCTAssertFalse(result.output.contains("report:"), "refused before the work: \(result.output)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [], "nothing written")
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

    private func calibrate(_ extra: [String], images: String? = nil, out: String? = nil) throws -> ToolRunner.Result {
        try ToolRunner.run(["calibrate", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--no-compare-techniques",
                            "--images", images ?? directory.appendingPathComponent("images").path,
                            "--out", out ?? directory.appendingPathComponent("int8.safetensors").path] + extra)
    }

    /// With one image, int8 would be judged on the image it was calibrated on: refused, unless --eval-images gives others.
    func testOneImageIsRefusedUnlessEvaluationImagesAreGiven() throws {
        let one = directory.appendingPathComponent("one")
        try FileManager.default.createDirectory(at: one, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: directory.appendingPathComponent("images/field-0.png"), to: one.appendingPathComponent("field-0.png"))
        let refused = try calibrate([], images: one.path)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.errors.contains("--images \(one.path): one image"), refused.errors)
        let accepted = try calibrate(["--eval-images", directory.appendingPathComponent("images").path], images: one.path)
        XCTAssertEqual(accepted.status, 0, accepted.errors)
    }

    func testLabelsThatCannotBeRightAreRefusedByName() throws {
        let source = try ModelSource(path: ToolRunner.fixture("mtl2-tiny.safetensors"))
        let tasks = source.description.tasks
        let eval = directory.appendingPathComponent("eval"), labels = directory.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: eval, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: directory.appendingPathComponent("images/field-0.png"), to: eval.appendingPathComponent("field-0.png"))
        let image = try ImageFile.read(path: eval.appendingPathComponent("field-0.png").path)
        func writeLabels(task: TaskDescription, value: (Int) -> UInt8) throws -> String {
            let folder = labels.appendingPathComponent(task.name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("field-0.png").path
            try ImageFile.writeGrayPNG(width: image.width, height: image.height, pixels: (0 ..< image.width * image.height).map(value), path: path)
            return path
        }
        let evalOption = ["--eval-images", eval.path, "--labels", labels.path]

        let missing = try calibrate(["--labels", directory.appendingPathComponent("no-labels").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.errors.contains("--labels") && missing.errors.contains("no such folder"), missing.errors)

        // Only the first task labelled, with its classes and 255: the other task is named as getting no mIoU.
        _ = try writeLabels(task: tasks[0]) { $0 % 7 == 0 ? 255 : UInt8($0 % tasks[0].classCount) }
        let partial = try calibrate(evalOption)
        XCTAssertEqual(partial.status, 0, partial.errors)
        XCTAssertTrue(partial.errors.contains("no folder '\(tasks[1].name)'"), partial.errors)
        XCTAssertTrue(partial.output.contains("\(tasks[0].name): agreement") && partial.output.contains("mIoU int8"), partial.output)

        // A grey level that is no class of the task: the mIoU would be wrong, so the file and the value are named.
        let bad = try writeLabels(task: tasks[0]) { $0 == 5 ? UInt8(tasks[0].classCount) : 0 }
        let refused = try calibrate(evalOption)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.errors.contains("\(bad): grey level \(tasks[0].classCount) at pixel 5, 0 is not a class of task"), refused.errors)

        // Maps that ignore every pixel score nothing: said, and no mIoU (it read 100 before).
        _ = try writeLabels(task: tasks[0]) { _ in 255 }
        let ignored = try calibrate(evalOption)
        XCTAssertEqual(ignored.status, 0, ignored.errors)
        XCTAssertTrue(ignored.errors.contains("mark every pixel 255 (ignore)"), ignored.errors)
        XCTAssertFalse(ignored.output.contains("mIoU int8"), ignored.output)

        // A map of another size than its image: most likely another image's map; refused, both sizes named.
        let small = labels.appendingPathComponent("\(tasks[0].name)/field-0.png").path
        try ImageFile.writeGrayPNG(width: image.width / 2, height: image.height, pixels: [UInt8](repeating: 0, count: image.width / 2 * image.height),
                                   path: small)
        let resized = try calibrate(evalOption)
        XCTAssertNotEqual(resized.status, 0)
        XCTAssertTrue(resized.errors.contains("is \(image.width / 2)x\(image.height), the image \(image.width)x\(image.height)"), resized.errors)

        // A binary mask saved as 0/255: its foreground would be "ignore"; said.
        _ = try writeLabels(task: tasks[0]) { $0 % 3 == 0 ? 255 : 0 }
        let binary = try calibrate(evalOption)
        XCTAssertTrue(binary.errors.contains("holds only 0 and 255: 255 means 'ignore'"), binary.errors)

        // A 16-bit map is refused before it is decoded (its values would be cut to their high byte): the header says it.
        var sixteen: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
        sixteen += [0, 0, 0, UInt8(image.width), 0, 0, 0, UInt8(image.height), 16, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 40)
        let deep = labels.appendingPathComponent("\(tasks[0].name)/field-0.png")
        try Data(sixteen).write(to: deep)
        let refusedDeep = try calibrate(evalOption)
        XCTAssertNotEqual(refusedDeep.status, 0)
        XCTAssertTrue(refusedDeep.errors.contains("\(deep.path): a 16-bit PNG"), refusedDeep.errors)

        // Maps named otherwise than the held-out images: none found, which is said (no mIoU without a word before).
        try FileManager.default.removeItem(at: deep)
        _ = try writeLabels(task: tasks[0]) { UInt8($0 % tasks[0].classCount) }
        try FileManager.default.moveItem(at: deep, to: labels.appendingPathComponent("\(tasks[0].name)/000.png"))
        let unmatched = try calibrate(evalOption)
        XCTAssertEqual(unmatched.status, 0, unmatched.errors)
        XCTAssertTrue(unmatched.errors.contains("no map in \(labels.path)/\(tasks[0].name)/ for any of the 1 held-out images"), unmatched.errors)
    }

    /// Held-out images that cannot be read leave nothing to judge int8 on: refused. Held-out images that are calibration
    /// images too: said.
    func testHeldOutImagesMustBeReadableAndAreNotCalibrationImages() throws {
        let eval = directory.appendingPathComponent("unreadable")
        try FileManager.default.createDirectory(at: eval, withIntermediateDirectories: true)
        try Data("not an image".utf8).write(to: eval.appendingPathComponent("a.png"))
        let nothing = try calibrate(["--eval-images", eval.path])
        XCTAssertNotEqual(nothing.status, 0)
        XCTAssertTrue(nothing.errors.contains("--eval-images \(eval.path): none of the 1 held-out image(s) could be read"), nothing.errors)
        let same = try calibrate(["--eval-images", directory.appendingPathComponent("images").path])
        XCTAssertEqual(same.status, 0, same.errors)
        XCTAssertTrue(same.errors.contains("11 of the 11 images of --eval-images are calibration images too"), same.errors)
    }

    /// The int8 file declares the size it was calibrated and judged at, which the daemon then runs it at.
    func testTheCalibratedSizeIsTheInt8ModelsInputSize() throws {
        let declared = try XCTUnwrap(try ModelSource(path: ToolRunner.fixture("mtl2-tiny.safetensors")).description.input)
        let result = try calibrate(["--size", "64x48"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertTrue(result.errors.contains("note: calibrating at 64x48") && result.errors.contains("declares \(declared.width)x\(declared.height)"),
                      result.errors)
        let input = try ModelSource(path: directory.appendingPathComponent("int8.safetensors").path).description.input
        XCTAssertEqual(input, InputSize(width: 64, height: 48))
    }

    func testMoreWideDecoderInputsThanTheModelHasStagesIsRefused() throws {
        let stages = try ModelSource(path: ToolRunner.fixture("mtl2-tiny.safetensors")).description.encoder.stageCount
        let result = try calibrate(["--wide-decoder-inputs", "\(stages)"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("--wide-decoder-inputs \(stages)") && result.errors.contains("at most \(stages - 1)"), result.errors)
    }
}
