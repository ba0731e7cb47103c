import CKernels
import Foundation
import MTLSegCore
import MTLSegEssentials
import XCTest
@testable import MTLSegQuant

/// Rounding on the calibration data, the layer-input statistics it uses, and bias correction of the whole int8 product.
final class WeightRefinementTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    /// E‖(W − W_q)·x‖² summed over outputs, for inputs with second moments h.
    private func outputError(_ w: [Float], _ q: [Int8], _ scale: [Float], _ h: [Double], n: Int, k: Int) -> Double {
        var total = 0.0
        for o in 0 ..< n {
            let e = (0 ..< k).map { Double(w[o * k + $0]) - Double(q[o * k + $0]) * Double(scale[o]) }
            for i in 0 ..< k { for j in 0 ..< k { total += e[i] * h[i * k + j] * e[j] } }
        }
        return total
    }

    func testWithUncorrelatedInputsItRoundsToNearest() throws {
        var g = SplitMix64(seed: 1)
        let n = 6, k = 24
        let w = (0 ..< n * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
        let nearest = w.withUnsafeBufferPointer { QuantizedTensor(weights: $0.baseAddress!, outFeatures: n, inFeatures: k) }
        // A diagonal H: no error can be cancelled by another weight, so nothing moves.
        var h = [Double](repeating: 0, count: k * k)
        for i in 0 ..< k { h[i * k + i] = Double.random(in: 0.5 ... 2, using: &g) }
        let values = try XCTUnwrap(w.withUnsafeBufferPointer {
            ErrorFeedbackRounding.values(weights: $0.baseAddress!, outFeatures: n, inFeatures: k, scale: nearest.scale, secondMoment: h)
        })
        XCTAssertEqual(values, nearest.values)
    }

    func testWithCorrelatedInputsItLowersTheOutputError() throws {
        var g = SplitMix64(seed: 2)
        let n = 8, k = 32, rows = 400
        // Inputs with strongly correlated features (as LayerNorm and GELU outputs are): a few factors mixed.
        let factors = 4
        let mixing = (0 ..< factors * k).map { _ in Double.random(in: -1 ... 1, using: &g) }
        var h = [Double](repeating: 0, count: k * k)
        for _ in 0 ..< rows {
            let f = (0 ..< factors).map { _ in Double.random(in: -1 ... 1, using: &g) }
            let x = (0 ..< k).map { i in (0 ..< factors).reduce(0.0) { $0 + f[$1] * mixing[$1 * k + i] } + 0.05 * Double.random(in: -1 ... 1, using: &g) }
            for i in 0 ..< k { for j in 0 ..< k { h[i * k + j] += x[i] * x[j] / Double(rows) } }
        }
        let w = (0 ..< n * k).map { _ in Float.random(in: -1 ... 1, using: &g) }
        let nearest = w.withUnsafeBufferPointer { QuantizedTensor(weights: $0.baseAddress!, outFeatures: n, inFeatures: k) }
        let values = try XCTUnwrap(w.withUnsafeBufferPointer {
            ErrorFeedbackRounding.values(weights: $0.baseAddress!, outFeatures: n, inFeatures: k, scale: nearest.scale, secondMoment: h)
        })
        XCTAssertNotEqual(values, nearest.values)
        XCTAssertTrue(values.allSatisfy { $0 >= -127 })
        let before = outputError(w, nearest.values, nearest.scale, h, n: n, k: k)
        let after = outputError(w, values, nearest.scale, h, n: n, k: k)
        XCTAssertLessThan(after, before / 2, "error-feedback rounding should cancel most of the output error (\(before) → \(after))")
    }

    func testTheUpperFactorInvertsH() throws {
        var g = SplitMix64(seed: 3)
        let k = 9
        let a = (0 ..< k * k).map { _ in Double.random(in: -1 ... 1, using: &g) }
        var h = [Double](repeating: 0, count: k * k)
        for i in 0 ..< k { for j in 0 ..< k { for t in 0 ..< k { h[i * k + j] += a[i * k + t] * a[j * k + t] } }; h[i * k + i] += 0.1 }
        let u = try XCTUnwrap(ErrorFeedbackRounding.upperFactorOfInverse(h, k))
        // Uᵀ·U·H = I.
        for i in 0 ..< k {
            for j in 0 ..< k {
                var value = 0.0
                for t in 0 ..< k {
                    var inverse = 0.0
                    for s in 0 ..< k { inverse += u[s * k + i] * u[s * k + t] }
                    value += inverse * h[t * k + j]
                }
                XCTAssertEqual(value, i == j ? 1 : 0, accuracy: 1e-8)
            }
            for j in 0 ..< i { XCTAssertEqual(u[i * k + j], 0) }
        }
    }

    /// Records one point's values as the fp32 engine reports them.
    private final class Recorder: ActivationObserver {
        let point: QuantPoint
        var rows: [[Float]] = []
        init(point: QuantPoint) { self.point = point }
        func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
            guard point == self.point else { return }
            for r in 0 ..< rows { self.rows.append(Array(UnsafeBufferPointer(start: values + r * channels, count: channels))) }
        }
    }

    private func fixture() throws -> (weights: MTLSegFormerWeights, input: FloatBuffer, height: Int, width: Int) {
        let weights = try MTLSegFormerWeights(source: try ModelSource(path: Self.fixtures.appendingPathComponent("mtl2-tiny.safetensors").path))
        let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent("mtl2-tiny.reference.safetensors").path)
        let shape = file.entry("pixel_values")!.shape
        return (weights, try file.floats(try XCTUnwrap(file.entry("pixel_values"))), shape[2], shape[3])
    }

    func testStatisticsAndTheOutputBiasShiftMatchTheLayersInputs() throws {
        let f = try fixture()
        let plan = ForwardPlan(description: f.weights.description, height: f.height, width: f.width)
        let point = QuantPoint.activation(1, 0)
        let layer = f.weights.stages[1].blocks[0].dense2
        let engine = FP32Engine(weights: f.weights, height: f.height, width: f.width)
        let recorder = Recorder(point: point)
        engine.observer = recorder
        engine.run(input: f.input.pointer)
        let x = recorder.rows
        XCTAssertFalse(x.isEmpty)
        // A deliberately coarse, clipping grid, so that the input grid moves the mean visibly.
        let flat = x.flatMap { $0 }
        let grid = QuantParams(min: flat.min()! * 0.5, max: flat.max()! * 0.3)
        var grids: [QuantPoint: QuantParams] = [:]
        for p in QuantPoint.all(for: f.weights.description) { grids[p] = QuantParams(min: -1, max: 1) }
        grids[point] = grid
        let statistics = LayerInputStatistics(weights: f.weights, grids: grids, plan: plan, rowsPerObservation: 1 << 30)
        engine.observer = statistics
        engine.run(input: f.input.pointer)
        let m = try XCTUnwrap(statistics.moments(ofLayer: layer.name))
        let k = layer.inFeatures
        XCTAssertEqual(m.rows, x.count)
        let xq = x.map { row -> [Float] in
            var copy = row
            copy.withUnsafeMutableBufferPointer { ck_fake_quantize_f32($0.baseAddress!, $0.count, grid.scale, grid.zeroPoint) }
            return copy
        }
        for i in 0 ..< k {
            let mean = x.reduce(0.0) { $0 + Double($1[i]) } / Double(x.count)
            let quantizedMean = xq.reduce(0.0) { $0 + Double($1[i]) } / Double(x.count)
            XCTAssertEqual(m.mean[i], mean, accuracy: 1e-5 * max(1, abs(mean)))
            XCTAssertEqual(m.quantizedMean[i], quantizedMean, accuracy: 1e-5 * max(1, abs(quantizedMean)))
            let second = x.reduce(0.0) { $0 + Double($1[i]) * Double($1[(i * 7) % k]) } / Double(x.count)
            XCTAssertEqual(m.secondMoment[i * k + (i * 7) % k], second, accuracy: 1e-4 * max(1e-3, abs(second)))
        }
        // The output correction is the mean of the int8 product's error over those rows: W_q·x_q − W·x.
        let q = layer.quantizingWeights().quantized!
        let shift = WeightRefinement.meanShift(layer, q, mean: m.mean, quantizedMean: m.quantizedMean)
        let weightsOnly = WeightRefinement.meanShift(layer, q, mean: m.mean, quantizedMean: m.mean)
        var differs = false
        for o in 0 ..< layer.outFeatures {
            var error = 0.0
            for r in x.indices {
                for i in 0 ..< k {
                    error += Double(q.values[o * k + i]) * Double(q.scale[o]) * Double(xq[r][i]) - Double(layer.weight[o * k + i]) * Double(x[r][i])
                }
            }
            error /= Double(x.count)
            XCTAssertEqual(shift[o], error, accuracy: 1e-5 + 1e-4 * abs(error))
            if abs(shift[o] - weightsOnly[o]) > 10 * (1e-5 + 1e-4 * abs(error)) { differs = true }
        }
        XCTAssertTrue(differs, "a clipping input grid must shift the mean beyond what the weights' rounding does")
    }

    func testRefinementKeepsTheFP32FunctionAndOnlyChangesInt8ValuesAndBiases() throws {
        let f = try fixture()
        let plan = ForwardPlan(description: f.weights.description, height: f.height, width: f.width)
        let grids = Dictionary(uniqueKeysWithValues: QuantPoint.all(for: f.weights.description).map { ($0, QuantParams(min: -4, max: 4)) })
        let statistics = LayerInputStatistics(weights: f.weights, grids: grids, plan: plan)
        let engine = FP32Engine(weights: f.weights, height: f.height, width: f.width)
        engine.observer = statistics
        engine.run(input: f.input.pointer)
        let info = CalibrationInfo(method: "minmax", images: 1, width: f.width, height: f.height, sourceModel: "mtl2-tiny", createdAt: "test")
        let base = QuantizedModel(fp32: f.weights, statistics: ActivationStatistics(grids: grids, channelMeans: [:]), calibration: info)
        let rounded = WeightRefinement.dataRounding(of: base, fp32: f.weights, inputs: statistics)
        let (refined, effects) = WeightRefinement.apply(to: base, fp32: f.weights, inputs: statistics, rounded: rounded, biasCorrection: .output)
        XCTAssertFalse(rounded.isEmpty)
        XCTAssertFalse(effects.isEmpty)
        let originals = Dictionary(uniqueKeysWithValues: f.weights.int8Layers.map { ($0.name, $0) })
        var changedValues = 0
        for layer in refined.weights.int8Layers {
            let original = try XCTUnwrap(originals[layer.name])
            // The fp32 weights (what a fallback runs) are untouched; the scales are the nearest rounding's.
            XCTAssertEqual(layer.weight.array, original.weight.array, layer.name)
            guard let q = layer.quantized, let nearest = base.weights.int8Layers.first(where: { $0.name == layer.name })?.quantized else { continue }
            XCTAssertEqual(q.scale, nearest.scale, layer.name)
            if q.values != nearest.values { changedValues += 1 }
        }
        XCTAssertGreaterThan(changedValues, 0)
        // Summed over the layers, rounding on the data lowers the weights' share of the output error.
        let gain = effects.compactMap { e in e.nearestSQNR.flatMap { n in e.roundedSQNR.map { $0 - n } } }
        XCTAssertFalse(gain.isEmpty)
        XCTAssertGreaterThan(gain.reduce(0, +) / Double(gain.count), 1, "mean SQNR gain in dB: \(gain)")
        // The refined model runs in the int8 engine and stays close to fp32 on the input it was calibrated on.
        let int8 = try refined.makeEngine(height: f.height, width: f.width, threads: 1)
        int8.run(input: f.input.pointer)
        engine.observer = nil
        engine.run(input: f.input.pointer)
        for (a, b) in zip(int8.logits, engine.logits) {
            let agreement = zip(SegmentationMask(logits: a).classes, SegmentationMask(logits: b).classes).filter { $0 == $1 }.count
            XCTAssertGreaterThan(Double(agreement) / Double(a.count / a.shape[0]), 0.9)
        }
    }
}
