import XCTest
@testable import MTLSegCore

/// The fp32 engine against PyTorch (HF transformers + calibration/mtlsegformer.py) on the committed fixtures.
final class ParityTests: XCTestCase {
    /// max |mtlseg − PyTorch| ≤ 1e-4 · max |PyTorch| + 1e-5 per task, and the same argmax
    /// wherever the reference's top-2 margin exceeds 1e-3.
    private func assertMatchesReference(model: String, reference: String, expectedTasks: [String],
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        let source = try ModelSource(path: Fixtures.path(model))
        XCTAssertEqual(source.description.tasks.map(\.name), expectedTasks, file: file, line: line)
        let weights = try MTLSegFormerWeights(source: source)
        let ref = try Fixtures.reference(reference)
        let engine = FP32Engine(weights: weights, height: ref.height, width: ref.width)
        engine.run(input: ref.input.pointer)
        for (t, task) in source.description.tasks.enumerated() {
            let expected = try XCTUnwrap(ref.logits[task.name], "reference has no logits for \(task.name)", file: file, line: line)
            let actual = engine.logits[t]
            XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
            let values = actual.values
            let scale = expected.values.map(abs).max()!
            let worst = zip(values, expected.values).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale + 1e-5, "\(model) task \(task.name): max error \(worst), max |logit| \(scale)",
                                     file: file, line: line)
            let k = expected.shape[0], plane = expected.shape[1] * expected.shape[2]
            var checked = 0
            for p in 0 ..< plane {
                let column = (0 ..< k).map { expected.values[$0 * plane + p] }
                let sorted = column.sorted(by: >)
                guard k == 1 || sorted[0] - sorted[1] > 1e-3 else { continue }
                let mine = (0 ..< k).map { values[$0 * plane + p] }
                XCTAssertEqual(mine.firstIndex(of: mine.max()!), column.firstIndex(of: sorted[0]),
                               "\(model) task \(task.name) pixel \(p)", file: file, line: line)
                checked += 1
            }
            XCTAssertGreaterThan(checked, plane / 2, "too few pixels with a clear margin to compare", file: file, line: line)
        }
    }

    func testPlainSegFormerFromAnHFCheckpointDirectory() throws {
        // transformers 5 tensor names, I64 num_batches_tracked, classes from id2label.
        try assertMatchesReference(model: "segformer-tiny-hf", reference: "segformer-tiny.reference.safetensors",
                                   expectedTasks: ["segmentation"])
    }

    func testPlainSegFormerFromAnMTLSegModelFile() throws {
        // transformers 4 tensor names.
        try assertMatchesReference(model: "segformer-tiny.safetensors", reference: "segformer-tiny.reference.safetensors",
                                   expectedTasks: ["segmentation"])
    }

    func testTwoTaskMTLSegFormer() throws {
        try assertMatchesReference(model: "mtl2-tiny.safetensors", reference: "mtl2-tiny.reference.safetensors",
                                   expectedTasks: ["plants", "rows"])
    }

    func testThreeTaskMTLSegFormer() throws {
        try assertMatchesReference(model: "mtl3-tiny.safetensors", reference: "mtl3-tiny.reference.safetensors",
                                   expectedTasks: ["plants", "rows", "gaps"])
    }

    func testRepeatedRunsGiveIdenticalResults() throws {
        let weights = try MTLSegFormerWeights(source: try ModelSource(path: Fixtures.path("mtl2-tiny.safetensors")))
        let ref = try Fixtures.reference("mtl2-tiny.reference.safetensors")
        let engine = FP32Engine(weights: weights, height: ref.height, width: ref.width)
        engine.run(input: ref.input.pointer)
        let first = engine.logits.map(\.values)
        engine.run(input: ref.input.pointer)
        XCTAssertEqual(engine.logits.map(\.values), first, "the arena must not carry state between frames")
    }

    func testOtherInputSizesRun() throws {
        // Sizes smaller than a spatial-reduction window and odd sizes still give finite logits of the right shape.
        let weights = try MTLSegFormerWeights(source: try ModelSource(path: Fixtures.path("mtl3-tiny.safetensors")))
        for (h, w) in [(33, 17), (64, 64), (9, 130)] {
            let engine = FP32Engine(weights: weights, height: h, width: w)
            let input = FloatBuffer((0 ..< 3 * h * w).map { Float(($0 * 7919) % 255) / 64 - 2 })
            engine.run(input: input.pointer)
            for (t, logits) in engine.logits.enumerated() {
                XCTAssertEqual(logits.shape, [weights.description.tasks[t].classCount, (h + 3) / 4, (w + 3) / 4])
                XCTAssertTrue(logits.values.allSatisfy(\.isFinite), "\(h)x\(w)")
            }
        }
    }
}
