import Foundation
import MTLSegCore
import MTLSegImage
import XCTest

final class InferAndInspectTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The fixture's RGB image, written as a PNG: the reference logits were computed from exactly these pixels.
    private func referenceImage(_ reference: SafeTensorsFile) throws -> (path: String, image: RGBImage) {
        let entry = try XCTUnwrap(reference.entry("image"))
        let pixels = try reference.integers(entry).map { UInt8($0) }
        let image = RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: pixels)
        let path = directory.appendingPathComponent("field.png").path
        try ImageFile.writePNG(image, path: path)
        return (path, image)
    }

    func testInferWritesMasksOverlaysAndLogitsThatMatchPyTorch() throws {
        let reference = try SafeTensorsFile(path: ToolRunner.fixture("mtl2-tiny.reference.safetensors"))
        let (imagePath, image) = try referenceImage(reference)
        let out = directory.appendingPathComponent("out").path
        let logits = directory.appendingPathComponent("field.npy").path
        let result = try ToolRunner.run(["infer", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--image", imagePath,
                                         "--out", out, "--logits", logits])
        XCTAssertEqual(result.status, 0, result.errors)
        for task in ["plants", "rows"] {
            let saved = try readNumpy(directory.appendingPathComponent("field.\(task).npy").path)
            let expected = try reference.floats(try XCTUnwrap(reference.entry("logits.\(task)")))
            XCTAssertEqual(saved.shape, [task == "plants" ? 2 : 3, 19, 26])
            let scale = expected.array.map(abs).max()!
            let worst = zip(saved.values, expected.array).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale + 1e-5, "task \(task)")
            for kind in ["mask", "overlay"] {
                let png = try ImageFile.read(path: (out as NSString).appendingPathComponent("field.\(task).\(kind).png"))
                XCTAssertEqual([png.width, png.height], [image.width, image.height], "\(task) \(kind) is at the image's size")
            }
        }
        XCTAssertTrue(result.output.contains("plants"), result.output)
    }

    /// Without --logits the int8 engine writes no logits; the masks are its argmax either way, scaled to the image.
    func testInt8InferWritesLogitsOnlyWhenAskedAndItsMasksAreTheResizedLogitsArgmax() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = root.appendingPathComponent("calibration/demo/crops-int8.safetensors").path
        let image = root.appendingPathComponent("calibration/demo/data/eval/images/000.png").path
        let plain = directory.appendingPathComponent("plain").path, withLogits = directory.appendingPathComponent("logits").path
        let first = try ToolRunner.run(["infer", "--model", model, "--image", image, "--out", plain])
        XCTAssertEqual(first.status, 0, first.errors)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: plain).contains { $0.hasSuffix(".npy") })
        let second = try ToolRunner.run(["infer", "--model", model, "--image", image, "--out", withLogits,
                                         "--logits", (withLogits as NSString).appendingPathComponent("000.npy")])
        XCTAssertEqual(second.status, 0, second.errors)
        let description = try ModelSource(path: model).description
        let picture = try ImageFile.read(path: image)
        for task in description.tasks {
            let saved = try readNumpy((withLogits as NSString).appendingPathComponent("000.\(task.name).npy"))
            let classes = SegmentationMask(logits: Tensor(shape: saved.shape, values: saved.values), width: picture.width, height: picture.height)
            let colors = (task.colors ?? Palette.default.colors.prefix(task.classCount).map { $0.map(Int.init) }).map { $0.map(UInt8.init) }
            let expected = colorize(mask: classes.classes, width: classes.width, height: classes.height, colors: colors)
            for out in [plain, withLogits] {
                let png = try ImageFile.read(path: (out as NSString).appendingPathComponent("000.\(task.name).mask.png"))
                XCTAssertEqual(png.pixels, expected.pixels, "\(task.name) in \(out): the mask is not the argmax of the bilinearly resized logits")
            }
        }
    }

    func testOneTaskLogitsGoToThePathItself() throws {
        let reference = try SafeTensorsFile(path: ToolRunner.fixture("segformer-tiny.reference.safetensors"))
        let (imagePath, _) = try referenceImage(reference)
        let logits = directory.appendingPathComponent("one.npy").path
        // An HF checkpoint declares no input size: the image runs at its own (102x75, as the reference).
        let result = try ToolRunner.run(["infer", "--model", ToolRunner.fixture("segformer-tiny-hf"), "--image", imagePath,
                                         "--out", directory.path, "--logits", logits])
        XCTAssertEqual(result.status, 0, result.errors)
        let saved = try readNumpy(logits)
        let expected = try reference.floats(try XCTUnwrap(reference.entry("logits.segmentation"))).array
        XCTAssertEqual(saved.shape, [3, 19, 26])
        let worst = zip(saved.values, expected).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * expected.map(abs).max()! + 1e-5)
    }

    func testInferOnACorruptImageNamesTheFile() throws {
        let path = directory.appendingPathComponent("broken.png").path
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]).write(to: URL(fileURLWithPath: path))
        let result = try ToolRunner.run(["infer", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--image", path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("broken.png"), result.errors)
    }

    func testInferOnACorruptModelNamesTheProblem() throws {
        let path = directory.appendingPathComponent("model.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        let result = try ToolRunner.run(["infer", "--model", path, "--image", path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("model.safetensors") && result.errors.contains("truncated"), result.errors)
    }

    func testInspectDescribesTheModel() throws {
        let result = try ToolRunner.run(["inspect", "--model", ToolRunner.fixture("mtl3-tiny.safetensors"), "--json"])
        XCTAssertEqual(result.status, 0, result.errors)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        XCTAssertEqual((report["tasks"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["plants", "rows", "gaps"])
        XCTAssertEqual(report["variant"] as? String, "custom")
        XCTAssertEqual((report["input"] as? [String: Int])?["width"], 102)
        // The parameter count equals the tensors' elements (the fixture holds nothing else).
        let file = try SafeTensorsFile(path: ToolRunner.fixture("mtl3-tiny.safetensors"))
        let stored = file.entries.filter { !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var") && !$0.name.hasSuffix("num_batches_tracked") }
            .reduce(0) { $0 + $1.elementCount }
        XCTAssertEqual(report["parameters"] as? Int, stored)
        XCTAssertGreaterThan(report["macs"] as? Int ?? 0, report["macs_executed"] as? Int ?? .max)
    }

    /// `compare` runs each model on the image normalised its own way: the same weights under another normalisation
    /// (an HF checkpoint's preprocessor_config.json) are a different model, and compare must show it.
    func testCompareNormalisesForEachModelItsOwnWay() throws {
        let plain = directory.appendingPathComponent("plain"), halves = directory.appendingPathComponent("halves")
        for checkpoint in [plain, halves] {
            try FileManager.default.copyItem(at: URL(fileURLWithPath: ToolRunner.fixture("segformer-tiny-hf")), to: checkpoint)
        }
        try Data(#"{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#.utf8)
            .write(to: halves.appendingPathComponent("preprocessor_config.json"))
        let images = directory.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let pixels: [UInt8] = (0 ..< 48 * 40 * 3).map { (i: Int) -> UInt8 in UInt8((i * 37) % 251) }
        try ImageFile.writePNG(RGBImage(width: 48, height: 40, pixels: pixels), path: images.appendingPathComponent("a.png").path)
        func difference(_ model: URL, _ reference: URL) throws -> Double {
            let result = try ToolRunner.run(["compare", "--model", model.path, "--reference", reference.path, "--images", images.path, "--json"])
            XCTAssertEqual(result.status, 0, result.errors)
            let line = try XCTUnwrap(result.output.split(separator: "\n").last.map(String.init))
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let task = try XCTUnwrap((report["tasks"] as? [String: Any])?.values.first as? [String: Any])
            return try XCTUnwrap(task["max_abs_logit_difference"] as? Double)
        }
        XCTAssertEqual(try difference(plain, plain), 0)
        XCTAssertGreaterThan(try difference(halves, plain), 0.01, "another normalisation is another model")
    }
}
