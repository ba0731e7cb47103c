import Foundation
import MTLSegCore
import MTLSegImage
import XCTest

/// The `mtlseg` tool given what could crash it, exhaust it or destroy a user's model (issue #17, classes 1, 3, 4).
final class HostileToolInputTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-hostile-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("images"), withIntermediateDirectories: true)
        for variant in 0 ..< 3 {
            // One typed step at a time: Swift 6.2's type checker gives up on the expression in one piece.
            let pixels: [UInt8] = (0 ..< 40 * 30 * 3).map { (i: Int) -> UInt8 in UInt8((i * 7 + variant * 50) % 256) }
            try ImageFile.writePNG(RGBImage(width: 40, height: 30, pixels: pixels), path: path("images/frame-\(variant).png"))
        }
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("images/broken.png"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    private func calibrate(model: String, out: String, extra: [String] = []) throws -> ToolRunner.Result {
        try ToolRunner.run(["calibrate", "--model", model, "--images", path("images"), "--out", out] + extra)
    }

    func testCalibrateRefusesToReplaceItsInputModel() throws {
        let model = path("model.safetensors")
        try FileManager.default.copyItem(atPath: ToolRunner.fixture("mtl2-tiny.safetensors"), toPath: model)
        try FileManager.default.createSymbolicLink(atPath: path("link.safetensors"), withDestinationPath: model)
        try FileManager.default.linkItem(atPath: model, toPath: path("hardlink.safetensors"))
        let original = try contents(model)
        // The same file by its own name, spelt through '..', through a symbolic link and through a hard link.
        for out in [model, directory.appendingPathComponent("images/../model.safetensors").path, path("link.safetensors"),
                    path("hardlink.safetensors")] {
            let result = try calibrate(model: model, out: out)
            XCTAssertNotEqual(result.status, 0, out)
            XCTAssertTrue(result.errors.contains("would be replaced"), result.errors)
            XCTAssertFalse(result.errors.contains("broken.png"), "refused before any image was read: \(result.errors)")
        }
        XCTAssertEqual(try contents(model), original, "the fp32 model is untouched")
    }

    func testCalibrateRefusesToReplaceAnHFCheckpointsWeights() throws {
        let checkpoint = path("hf")
        try FileManager.default.copyItem(atPath: ToolRunner.fixture("segformer-tiny-hf"), toPath: checkpoint)
        let weights = checkpoint + "/model.safetensors"
        let original = try contents(weights)
        let result = try calibrate(model: checkpoint, out: weights, extra: ["--size", "64x64"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("would be replaced"), result.errors)
        XCTAssertEqual(try contents(weights), original)
        // Its report may not land on the checkpoint's config.json either.
        let config = try contents(checkpoint + "/config.json")
        let report = try calibrate(model: checkpoint, out: path("int8.safetensors"), extra: ["--size", "64x64", "--report", checkpoint + "/config"])
        XCTAssertNotEqual(report.status, 0)
        XCTAssertTrue(report.errors.contains("--report") && report.errors.contains("would be replaced"), report.errors)
        XCTAssertEqual(try contents(checkpoint + "/config.json"), config)
    }

    func testCalibrateChecksTheOutputFolderBeforeTheWork() throws {
        for out in [path("missing/int8.safetensors"), path("images")] {
            let result = try calibrate(model: ToolRunner.fixture("mtl2-tiny.safetensors"), out: out)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.errors.contains("--out") && (result.errors.contains("does not exist") || result.errors.contains("is a folder")),
                          result.errors)
            XCTAssertFalse(result.errors.contains("broken.png"), "refused before any image was read: \(result.errors)")
        }
    }

    func testBenchRefusesSizesOverTheMemoryBudget() throws {
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        for arguments in [["--size", "16384x16384"], ["--fp32", "--size", "4096x4096", "--memory-budget", "256"]] {
            let result = try ToolRunner.run(["bench", "--model", model, "--iterations", "1"] + arguments)
            XCTAssertNotEqual(result.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(result.errors.contains("memory budget") && result.errors.contains("--memory-budget MB"), result.errors)
        }
        let fits = try ToolRunner.run(["bench", "--model", model, "--iterations", "1", "--size", "64x64", "--memory-budget", "256"])
        XCTAssertEqual(fits.status, 0, fits.errors)
    }

    func testInferRefusesAnImageBombBeforeDecodingIt() throws {
        var bomb = try ImageFile.encodeGrayPNG(width: 1, height: 1, pixels: [0])
        for offset in [16, 20] { bomb.replaceSubrange(offset ..< offset + 4, with: [0, 0, 0x40, 0]) }  // 16384 × 16384
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bomb[12 ..< 29] {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        crc = ~crc
        bomb.replaceSubrange(29 ..< 33, with: (0 ..< 4).map { UInt8((crc >> (24 - 8 * UInt32($0))) & 0xFF) })
        try Data(bomb).write(to: URL(fileURLWithPath: path("bomb.png")))
        let result = try ToolRunner.run(["infer", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--image", path("bomb.png"),
                                         "--out", path("out")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("bomb.png") && result.errors.contains("16384x16384") && result.errors.contains("--max-image-pixels"),
                      result.errors)
        let raised = try ToolRunner.run(["infer", "--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--image", path("images/frame-0.png"),
                                         "--out", path("out"), "--max-image-pixels", "1199"])
        XCTAssertNotEqual(raised.status, 0, "40x30 is 1200 pixels")
    }

    func testOutputFoldersAreCheckedBeforeTheWork() throws {
        try Data("a file".utf8).write(to: URL(fileURLWithPath: path("plain")))
        let model = ToolRunner.fixture("mtl2-tiny.safetensors"), image = path("images/frame-0.png")
        // A file where a folder is wanted, for each command that writes into a folder.
        for (arguments, option) in [(["infer", "--model", model, "--image", image, "--out", path("plain")], "--out"),
                                    (["capture", "--device", "synthetic", "--count", "1", "--out", path("plain/frames")], "--out"),
                                    (["subscribe", "--socket", path("none.sock"), "--png", path("plain/masks")], "--png")] {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0, arguments[0])
            XCTAssertTrue(result.errors.contains("\(option) ") && result.errors.contains("is a file, not a folder"), "\(arguments[0]): \(result.errors)")
        }
        // --logits into a folder that does not exist: refused before anything is written, not after the masks.
        let result = try ToolRunner.run(["infer", "--model", model, "--image", image, "--out", path("masks"), "--logits", path("missing/x.npy")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("--logits") && result.errors.contains("does not exist"), result.errors)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("masks")), [], "no mask written")
    }

    func testWhatIsNotAListOfImagesIsNamedWithItsOption() throws {
        var binary = Data([0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 13])
        binary.append(contentsOf: [UInt8](repeating: 0, count: 64))
        try binary.write(to: URL(fileURLWithPath: path("frames.bin")))
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        for (arguments, option) in [(["compare", "--model", model, "--reference", model, "--images", path("images/frame-0.png")], "--images"),
                                    (["compare", "--model", model, "--reference", model, "--images", path("frames.bin")], "--images"),
                                    (["calibrate", "--model", model, "--images", path("images"), "--eval-images", path("frames.bin"),
                                      "--out", path("int8.safetensors")], "--eval-images")] {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(result.errors.contains("\(option) ") && result.errors.contains("not a folder of images nor a text file listing image paths"),
                          result.errors)
        }
    }

    /// compare skips an image it cannot read, naming it, as calibrate does (it stopped at the first before).
    func testCompareSkipsAnUnreadableImageAndSaysSo() throws {
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        let result = try ToolRunner.run(["compare", "--model", model, "--reference", model, "--images", path("images"), "--json"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertTrue(result.errors.contains("warning: skipping") && result.errors.contains("broken.png"), result.errors)
        XCTAssertEqual(result.errors.components(separatedBy: "broken.png").count - 1, 1, "named once: \(result.errors)")
        XCTAssertTrue(result.output.contains("3 images at") && result.output.contains("(1 skipped)"), result.output)
    }

    /// A PyTorch checkpoint given as a model is named as such, with the way to export it.
    func testAPyTorchCheckpointIsNamedAsSuch() throws {
        for (bytes, kind) in [([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60), "a zip archive"),
                              ([0x80, 0x02] + [UInt8](repeating: 0, count: 60), "a Python pickle")] as [([UInt8], String)] {
            try Data(bytes).write(to: URL(fileURLWithPath: path("model.pt")))
            let result = try ToolRunner.run(["inspect", "--model", path("model.pt")])
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.errors.contains("\(kind) (a PyTorch .pt/.pth checkpoint?)") && result.errors.contains("calibration/export.py"),
                          result.errors)
        }
    }

    func testCompareChecksItsThreads() throws {
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        for threads in ["0", "999"] {
            let result = try ToolRunner.run(["compare", "--model", model, "--reference", model, "--images", path("images"), "--threads", threads])
            XCTAssertNotEqual(result.status, 0, threads)
            XCTAssertTrue(result.errors.contains("--threads must be between 1 and 256"), result.errors)
        }
    }

    func testABadSizeSaysWhatASizeMustBe() throws {
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        for arguments in [["bench", "--model", model, "--size", "0x0"], ["inspect", "--model", model, "--size", "20000x10"],
                          ["bench", "--model", model, "--mask-sizes", "640x480,12"]] {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(result.errors.contains("WxH with each side 1 to 16384"), result.errors)
        }
    }

    /// Values that mean nothing, and options that would be ignored, are refused before any work (not taken silently).
    func testOptionsThatWouldMeanNothingAreRefused() throws {
        let model = ToolRunner.fixture("mtl2-tiny.safetensors")
        let image = path("images/frame-0.png")
        let cases: [([String], String)] = [
            (["subscribe", "--socket", path("none.sock"), "--count=-1"], "--count must not be negative"),
            (["subscribe", "--socket", path("none.sock"), "--color"], "give --png DIR too"),
            (["calibrate", "--model", model, "--images", path("images"), "--out", path("x.safetensors"), "--percentile", "99"],
             "--percentile is for --method percentile"),
            (["bench", "--model", model, "--mask-sizes", ""], "--mask-sizes: '' is not"),
            (["bench", "--model", model, "--mask-sizes", "64x64,,64x64"], "--mask-sizes: '' is not"),
            (["infer", "--model", model, "--image", image, "--out", path("o"), "--logits", ""], "--logits is empty"),
            (["infer", "--model", model, "--image", image, "--out", path("o"), "--logits", path("o") + "/"], "names a folder"),
        ]
        for (arguments, expected) in cases {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(result.errors.contains(expected), "\(arguments.joined(separator: " ")): \(result.errors)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.safetensors")))
        let written = (try? FileManager.default.contentsOfDirectory(atPath: path("o"))) ?? []
        XCTAssertTrue(written.isEmpty, "no masks before the refusal: \(written)")
    }

    /// A file that can never become a camera fails at once instead of being retried until --timeout.
    func testCaptureRefusesWhatIsNotACameraAtOnce() throws {
        try Data("a file".utf8).write(to: URL(fileURLWithPath: path("plain")))
        for device in [path("plain"), "/dev/null"] {
            let result = try ToolRunner.run(["capture", "--device", device, "--count", "1", "--out", path("frames"), "--timeout", "30"])
            XCTAssertNotEqual(result.status, 0, device)
            XCTAssertTrue(result.errors.contains("\(device): not a camera"), result.errors)
            // Refused before capture starts, not retried: a retried camera would have said "capturing" and failed with
            // "no frame within 30 s" (by what it says, not by how long it took).
            XCTAssertFalse(result.output.contains("capturing"), result.output)
            XCTAssertFalse(result.errors.contains("no frame within"), result.errors)
        }
    }
}
