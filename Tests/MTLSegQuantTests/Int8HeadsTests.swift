import CKernels
import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// The fused heads (band by band) against the unfused ones (map by map): the same logits bit for bit, and masks
/// and pixel counts that are exactly the argmax of those logits, with every GEMM kernel set and at 1 and 3 threads.
/// The other operations' versions follow MTLSEG_KERNELS (run the suite under avx512vnni, avx2 and scalar).
final class Int8HeadsTests: XCTestCase {
    private static let demoModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("calibration/demo/crops-int8.safetensors").path

    private func kernelSets() -> [UnsafePointer<ck_qgemm_kernels>] {
        var sets = [UnsafePointer<ck_qgemm_kernels>?](repeating: nil, count: 8)
        let count = ck_qgemm_available(&sets, sets.count)
        return sets.prefix(count).compactMap { $0 }
    }

    /// Runs `fused` and `unfused` on each input and compares logits, masks and counts.
    private func compare(_ fused: Int8Engine, _ unfused: Int8Engine, inputs: [FloatBuffer], _ label: String) {
        let tasks = fused.logits.count
        for (i, input) in inputs.enumerated() {
            fused.writesLogits = true
            fused.run(input: input.pointer)
            unfused.run(input: input.pointer)
            for t in 0 ..< tasks {
                let classCount = fused.logits[t].shape[0]
                let expected = unfused.logits[t].values, actual = fused.logits[t].values
                let differing = zip(expected, actual).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(label), input \(i), task \(t): \(differing) of \(expected.count) logits differ")
                let mask = fused.mask(task: t), reference = SegmentationMask(logits: fused.logits[t])
                XCTAssertEqual(mask, reference, "\(label), input \(i), task \(t): the engine's mask is not the argmax of its logits")
                XCTAssertEqual(mask, unfused.mask(task: t), "\(label), input \(i), task \(t): masks differ from the unfused heads'")
                XCTAssertEqual(fused.pixelsPerClass(task: t), reference.pixelCounts(classCount: classCount), "\(label), task \(t): counts")
                XCTAssertEqual(fused.pixelsPerClass(task: t).reduce(0, +), mask.classes.count)
            }
            // Masks only: the logits are left as they were, the masks are the same.
            for t in 0 ..< tasks { fused.logits[t].storage.pointer.update(repeating: .nan, count: fused.logits[t].count) }
            fused.writesLogits = false
            fused.run(input: input.pointer)
            for t in 0 ..< tasks {
                XCTAssertTrue(fused.logits[t].values.allSatisfy(\.isNaN), "\(label), task \(t): logits written in masks-only runs")
                XCTAssertEqual(fused.mask(task: t), unfused.mask(task: t), "\(label), input \(i), task \(t): masks-only masks differ")
            }
        }
    }

    func testFusedHeadsEqualUnfusedOnFixtures() throws {
        for (model, reference) in [("mtl2-tiny.safetensors", "mtl2-tiny.reference.safetensors"),
                                   ("mtl3-tiny.safetensors", "mtl3-tiny.reference.safetensors"),
                                   ("segformer-tiny.safetensors", "segformer-tiny.reference.safetensors")] {
            let setup = try CalibratedFixture.make(model, reference: reference)
            let weights = setup.model.weights, grids = try setup.model.record.grids(for: weights.description)
            for set in kernelSets() {
                for threads in [1, 3] {
                    let make = { (fused: Bool) throws -> Int8Engine in
                        try Int8Engine(weights: weights, activations: grids, height: setup.height, width: setup.width, threads: threads,
                                       fusedHeads: fused, kernels: set)
                    }
                    compare(try make(true), try make(false), inputs: Array(setup.inputs.prefix(3)),
                            "\(model), \(String(cString: set.pointee.name)), \(threads) threads")
                }
            }
        }
    }

    /// A task map or combine conv calibration moved back to fp32: the task maps are not stacked, the band runs them one
    /// by one, the logits are still the unfused path's.
    func testFusedHeadsWithFallbacksEqualUnfused() throws {
        let setup = try CalibratedFixture.make("mtl3-tiny.safetensors", reference: "mtl3-tiny.reference.safetensors")
        let heads = setup.model.weights.heads
        let model = setup.model.fallingBack([heads[1].taskMap.name, heads[0].combine.name], fp32: setup.fp32)
        let grids = try model.record.grids(for: model.weights.description)
        let make = { (fused: Bool) throws -> Int8Engine in
            try Int8Engine(weights: model.weights, activations: grids, height: setup.height, width: setup.width, threads: 2, fusedHeads: fused)
        }
        compare(try make(true), try make(false), inputs: Array(setup.inputs.prefix(2)), "mtl3-tiny with fallbacks")
    }

    /// The shipped demo model (a MiT-b0 with two tasks), at 128×128 to keep the unfused reference quick.
    func testFusedHeadsEqualUnfusedOnTheDemoModel() throws {
        let source = try ModelSource(path: Self.demoModel)
        let record = try XCTUnwrap(source.quantization, "the demo model is int8")
        let weights = try MTLSegFormerWeights(source: source, floatWeights: false)
        let grids = try record.grids(for: weights.description)
        let (height, width) = (128, 128)
        var inputs: [FloatBuffer] = []
        var state: UInt32 = 7
        for _ in 0 ..< 2 {
            let input = FloatBuffer(count: 3 * height * width)
            for i in 0 ..< input.count {
                state = state &* 1_664_525 &+ 1_013_904_223
                input[i] = Float(state >> 8) / Float(1 << 24) * 4 - 2
            }
            inputs.append(input)
        }
        for set in kernelSets() {
            for threads in [1, 2] {
                let make = { (fused: Bool) throws -> Int8Engine in
                    try Int8Engine(weights: weights, activations: grids, height: height, width: width, threads: threads,
                                   attentionInInt8: record.attentionInInt8, fusedHeads: fused, kernels: set)
                }
                compare(try make(true), try make(false), inputs: inputs, "demo model, \(String(cString: set.pointee.name)), \(threads) threads")
            }
        }
    }
}
