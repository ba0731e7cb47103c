import Foundation
import MTLSegCore
import MTLSegEssentials
import MTLSegTestSupport
import XCTest
@testable import MTLSegQuant

/// The calibration session on the 2-task fixture: budgets, fallbacks, and what the int8 file records.
final class CalibrationSessionTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    private struct Setup {
        let fp32: MTLSegFormerWeights
        let inputs: [FloatBuffer]
        let height: Int
        let width: Int
    }

    private func setup() throws -> Setup {
        let fp32 = try MTLSegFormerWeights(source: try ModelSource(path: Self.fixtures.appendingPathComponent("mtl2-tiny.safetensors").path))
        let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent("mtl2-tiny.reference.safetensors").path)
        let pixels = try file.floats(try XCTUnwrap(file.entry("pixel_values")))
        let shape = file.entry("pixel_values")!.shape
        // Twelve variations of the reference input: shifted, scaled, noisy.
        var generator = SplitMix64(seed: testSeed("CalibrationSessionTests inputs", fallback: 0x5EED_0003))
        let inputs = (0 ..< 12).map { variant -> FloatBuffer in
            let copy = FloatBuffer(count: pixels.count)
            for i in 0 ..< pixels.count {
                copy[i] = pixels[(i + variant * 37) % pixels.count] * (1 - 0.05 * Float(variant)) + Float.random(in: -0.2 ... 0.2, using: &generator)
            }
            return copy
        }
        return Setup(fp32: fp32, inputs: inputs, height: shape[2], width: shape[3])
    }

    private func run(_ s: Setup, maxDrop: Double?, attentionInInt8: Bool = true,
                     options: CalibrationSession.Options? = nil) throws -> CalibrationSession.Result {
        let calibration = Array(s.inputs[0 ..< 8]), evaluation = Array(s.inputs[8...])
        let copy = { (source: [FloatBuffer]) -> AccuracyEvaluator.Input in
            { i, target in
                target.update(from: source[i].pointer, count: source[i].count)
                return true
            }
        }
        let evaluator = try AccuracyEvaluator(fp32Weights: s.fp32, width: s.width, height: s.height, count: evaluation.count, input: copy(evaluation))
        let info = CalibrationInfo(method: "mse", images: calibration.count, width: s.width, height: s.height, sourceModel: "mtl2-tiny", createdAt: "test")
        return try CalibrationSession(fp32: s.fp32, width: s.width, height: s.height, options: options ?? .init(method: .mse, maxDrop: maxDrop, attentionInInt8: attentionInInt8))
            .run(calibrationCount: calibration.count, calibration: copy(calibration), evaluator: evaluator, info: info)
    }

    func testAttentionCanRunInFP32() throws {
        let s = try setup()
        let int8 = try run(s, maxDrop: nil)
        let fp32Attention = try run(s, maxDrop: nil, attentionInInt8: false)
        XCTAssertEqual(fp32Attention.model.record.attention, "fp32")
        XCTAssertNil(int8.model.record.attention)
        // Both engines follow fp32 closely; they differ from each other (the products really changed precision).
        let a = try int8.model.makeEngine(height: s.height, width: s.width, threads: 1)
        let b = try fp32Attention.model.makeEngine(height: s.height, width: s.width, threads: 2)
        a.run(input: s.inputs[0].pointer)
        b.run(input: s.inputs[0].pointer)
        XCTAssertNotEqual(a.logits.map(\.values), b.logits.map(\.values))
        XCTAssertTrue(fp32Attention.accuracy.allSatisfy { $0.agreement > 0.9 }, "\(fp32Attention.accuracy)")
    }

    /// With the techniques compared (calibrate's default), the model written is the one whose refinement effects the
    /// report gives: also with rounding to nearest and the weights' bias correction, whose biases then come from the
    /// layer inputs' means (`WeightRefinement.apply`), not from the range pass's channel means the first model had.
    func testWithTechniquesComparedTheModelKeptIsTheOneTheReportDescribes() throws {
        let s = try setup()
        let options = CalibrationSession.Options(method: .mse, rounding: .nearest, biasCorrection: .weights, compareTechniques: true,
                                                 smoothing: [], wideDecoderInputs: 0)
        let kept = try run(s, maxDrop: nil, options: options).model
        XCTAssertFalse(kept.weights.int8Layers.isEmpty)

        // The same steps by hand: the grids, the first model, the layer inputs' moments, the refinement.
        let calibration = Array(s.inputs[0 ..< 8])
        let copy = { (i: Int, target: UnsafeMutablePointer<Float>) -> Bool in
            target.update(from: calibration[i].pointer, count: calibration[i].count)
            return true
        }
        let statistics = Calibrator(weights: s.fp32, width: s.width, height: s.height).measure(count: calibration.count, method: .mse, input: copy)
        let info = CalibrationInfo(method: "mse", images: calibration.count, width: s.width, height: s.height, sourceModel: "mtl2-tiny", createdAt: "test")
        let first = QuantizedModel(fp32: s.fp32, statistics: statistics, calibration: info)
        let inputs = LayerInputStatistics(weights: s.fp32, grids: statistics.grids,
                                          plan: ForwardPlan(description: s.fp32.description, height: s.height, width: s.width))
        let engine = FP32Engine(weights: s.fp32, height: s.height, width: s.width)
        engine.observer = inputs
        for input in calibration { engine.run(input: input.pointer) }
        let refined = WeightRefinement.apply(to: first, fp32: s.fp32, inputs: inputs, rounded: [:], biasCorrection: .weights).model

        func biases(_ model: QuantizedModel) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: model.weights.int8Layers.map { ($0.name, $0.bias?.array ?? []) })
        }
        func differing(_ a: QuantizedModel, _ b: QuantizedModel) -> [String] {
            let other = biases(b)
            return biases(a).filter { other[$0.key] != $0.value }.keys.sorted()
        }
        XCTAssertEqual(biases(kept).count, biases(refined).count)
        XCTAssertEqual(differing(kept, refined), [], "layers whose biases are not the refinement's the report describes")
        // The two estimates of the inputs' means differ, so the check above tells the two models apart.
        XCTAssertFalse(differing(first, refined).isEmpty)
    }

    func testABudgetBelowWhatInt8DeliversForcesFallbacksInSQNROrder() throws {
        let s = try setup()
        let plain = try run(s, maxDrop: nil)
        XCTAssertTrue(plain.budgetHeld)
        XCTAssertTrue(plain.layers.allSatisfy { !$0.fallback })
        let worstDrop = plain.accuracy.map { 100 - $0.agreementMIoU }.max()!
        XCTAssertGreaterThan(worstDrop, 0, "the tiny model must lose something in int8 for this test to mean anything")
        // A budget just under the plain model's worst drop needs at least one fallback, and the lowest-SQNR layer goes first.
        let budgeted = try run(s, maxDrop: worstDrop * 0.9)
        let fallbacks = budgeted.model.record.calibration.fallbacks ?? []
        XCTAssertFalse(fallbacks.isEmpty)
        // In SQNR order: the layers that fell back are the lowest-SQNR ones, taken lowest first (compared by value, so
        // that layers of equal SQNR may come in either order).
        let sqnr = Dictionary(uniqueKeysWithValues: budgeted.layers.map { ($0.name, $0.sqnr ?? .infinity) })
        let fallenSQNR = fallbacks.map { sqnr[$0] ?? .nan }
        XCTAssertEqual(fallenSQNR, fallenSQNR.sorted(), "fallbacks \(fallbacks) not in ascending SQNR: \(fallenSQNR)")
        let keptSQNR = budgeted.layers.filter { !fallbacks.contains($0.name) }.map { $0.sqnr ?? .infinity }
        XCTAssertLessThanOrEqual(fallenSQNR.max() ?? -.infinity, keptSQNR.min() ?? .infinity,
                                 "a layer kept in int8 has a lower SQNR than one that fell back: \(budgeted.layers)")
        // Every layer may fall back and this model's activations alone lose less than the budget, so it is held, and
        // the accuracy reported is within it.
        XCTAssertTrue(budgeted.budgetHeld, budgeted.failure ?? "")
        XCTAssertTrue(budgeted.accuracy.allSatisfy { 100 - $0.agreementMIoU <= worstDrop * 0.9 }, "\(budgeted.accuracy)")
        // The fallen-back layers are fp32 in the model and run so in the engine.
        for name in fallbacks {
            XCTAssertNil(budgeted.model.weights.int8Layers.first { $0.name == name }?.quantized, name)
        }
    }

    func testAnImpossibleBudgetSaysWhy() throws {
        let result = try run(try setup(), maxDrop: 0)
        XCTAssertFalse(result.budgetHeld)
        let failure = try XCTUnwrap(result.failure)
        XCTAssertTrue(failure.contains("activations"), failure)
        XCTAssertEqual(result.model.record.calibration.fallbacks?.count, result.layers.count, "every layer was tried in fp32 first")
    }

    func testTheInt8FileRecordsTheCalibration() throws {
        let s = try setup()
        let result = try run(s, maxDrop: 100)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-cal-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Int8ModelWriter.write(result.model, to: path)
        let source = try ModelSource(path: path)
        let record = try XCTUnwrap(source.quantization)
        XCTAssertEqual(record, result.model.record)
        XCTAssertEqual(record.calibration.method, "mse")
        XCTAssertEqual(record.calibration.accuracy?.map(\.task), ["plants", "rows"])
        XCTAssertEqual(record.calibration.images, 8)
        // The loaded file gives the same logits as the model in memory.
        let loaded = try EngineFactory.make(source: source, height: s.height, width: s.width, threads: 1)
        let direct = try result.model.makeEngine(height: s.height, width: s.width, threads: 1)
        loaded.run(input: s.inputs[0].pointer)
        direct.run(input: s.inputs[0].pointer)
        XCTAssertEqual(loaded.logits.map(\.values), direct.logits.map(\.values))
    }

    func testRangeMethodsChooseSensibleGrids() {
        // A Gaussian-like bulk with a few far outliers.
        var histogram = ActivationHistogram(lo: -10, hi: 10, bins: 2048)
        for bin in 0 ..< 2048 {
            let x = Double(bin - 1024) / 102.4
            histogram.counts[bin] = UInt64(100_000 * exp(-x * x / 2))
        }
        histogram.counts[2047] += 3
        let minMax = histogram.grid(.minMax), mse = histogram.grid(.mse), percentile = histogram.grid(.percentile(tail: 0.001))
        XCTAssertEqual(minMax.hi, 10)
        XCTAssertLessThan(mse.hi, 8, "MSE clips the far outliers")
        XCTAssertGreaterThan(mse.hi, 2)
        XCTAssertLessThan(percentile.hi, 5)
        XCTAssertLessThanOrEqual(histogram.grid(.entropy).hi, 10)
    }
}
