#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// How int8 weights are rounded.
public enum WeightRounding: String, CaseIterable, Sendable {
    /// Each weight to its nearest step.
    case nearest
    /// On the calibration data: rounding errors fed forward onto the weights not yet rounded (`ErrorFeedbackRounding`).
    case data
}

/// What the bias of an int8 layer takes back out.
public enum BiasCorrectionMode: String, CaseIterable, Sendable {
    /// Nothing.
    case none
    /// The mean shift the weights' rounding causes: −(W_q − W)·E[x].
    case weights
    /// The mean shift of the whole int8 product, the input's u8 grid included: −(W_q·E[x_q] − W·E[x]).
    /// A clipped or lopsided grid (GELU's output) moves the input's mean; that shift reaches every output.
    case output
}

/// Weight-only changes made after the activation grids are chosen: the engine runs the result unchanged (same
/// int8 products, same grids), only the int8 values and the fp32 biases differ.
public enum WeightRefinement {
    /// What one layer's refinement changed.
    public struct LayerEffect: Codable, Equatable {
        public var name: String
        /// Output SQNR (dB) over the calibration rows with weights rounded to nearest, input exact, bias aside.
        public var nearestSQNR: Double?
        /// The same with the rounding used.
        public var roundedSQNR: Double?
        /// The RMS mean output shift the bias took back, in dB below the output's RMS (nil: none taken).
        public var correctedShift: Double?

        enum CodingKeys: String, CodingKey {
            case name, nearestSQNR = "nearest_sqnr", roundedSQNR = "rounded_sqnr", correctedShift = "corrected_shift_db"
        }
    }

    /// `base` must be `fp32` with its weights quantized (`QuantizedModel(fp32:statistics:calibration:)`): its
    /// scales are kept. Layers the statistics do not cover keep `base`'s form; the decoder's projections keep
    /// their (absent) biases, as they share one (see `QuantizedModel`).
    /// `rounded` holds the layers' int8 forms from `dataRounding` (empty: rounding to nearest).
    public static func apply(to base: QuantizedModel, fp32: MTLSegFormerWeights, inputs: LayerInputStatistics,
                             rounded: [String: QuantizedTensor], biasCorrection: BiasCorrectionMode,
                             measuringEffects: Bool = true) -> (model: QuantizedModel, effects: [LayerEffect]) {
        let originals = Dictionary(uniqueKeysWithValues: fp32.int8Layers.map { ($0.name, $0) })
        let decoderNames = Set(fp32.decoder.stageProjections.map(\.name))
        var effects: [LayerEffect] = []
        let weights = base.weights.mappingLayers { layer in
            guard let nearest = layer.quantized, let original = originals[layer.name], let m = inputs.moments(ofLayer: layer.name),
                  m.rows > 0 else { return layer }
            let n = layer.outFeatures, k = layer.inFeatures
            let h = m.secondMoment
            let quantized = rounded[layer.name] ?? nearest
            // The effects cost three k×k quadratic forms per output: only measured for the model kept.
            var effect = LayerEffect(name: layer.name, nearestSQNR: measuringEffects ? sqnr(original, nearest, h) : nil,
                                     roundedSQNR: measuringEffects ? sqnr(original, quantized, h) : nil)
            var bias = original.bias
            if biasCorrection != .none && !decoderNames.contains(layer.name) {
                let shift = meanShift(original, quantized, mean: m.mean, quantizedMean: biasCorrection == .output ? m.quantizedMean : m.mean)
                if measuringEffects {
                    let signal = outputPower(original, h)
                    let shiftPower = shift.reduce(0) { $0 + $1 * $1 } / Double(n)
                    effect.correctedShift = shiftPower > 0 && signal > 0 ? 10 * log10(signal / shiftPower) : nil
                }
                let corrected = FloatBuffer(count: n)
                for o in 0 ..< n { corrected[o] = (original.bias?[o] ?? 0) - Float(shift[o]) }
                bias = corrected
            }
            effects.append(effect)
            return LinearWeights(name: original.name, layout: original.layout, inFeatures: k, outFeatures: n, weight: original.weight,
                                 bias: bias, quantized: quantized)
        }
        return (QuantizedModel(weights: weights, record: base.record), effects)
    }

    /// Every covered int8 layer of `base` rounded on the data, its scales kept (layers whose H cannot be factorised
    /// are left out: they stay rounded to nearest).
    public static func dataRounding(of base: QuantizedModel, fp32: MTLSegFormerWeights, inputs: LayerInputStatistics,
                                    progress: (Int, Int) -> Void = { _, _ in }) -> [String: QuantizedTensor] {
        let originals = Dictionary(uniqueKeysWithValues: fp32.int8Layers.map { ($0.name, $0) })
        let layers = base.weights.int8Layers.filter { $0.quantized != nil && inputs.moments(ofLayer: $0.name).map { $0.rows > 0 } == true }
        var result: [String: QuantizedTensor] = [:]
        for (index, layer) in layers.enumerated() {
            guard let original = originals[layer.name], let nearest = layer.quantized, let m = inputs.moments(ofLayer: layer.name),
                  let values = ErrorFeedbackRounding.values(weights: original.weight.pointer, outFeatures: layer.outFeatures,
                                                            inFeatures: layer.inFeatures, scale: nearest.scale, secondMoment: m.secondMoment)
            else { continue }
            result[layer.name] = QuantizedTensor(values: values, scale: nearest.scale)
            progress(index + 1, layers.count)
        }
        return result
    }

    /// Per output, the mean shift E[W_q·x_q − W·x] of the int8 product over inputs whose mean is `mean` exactly and
    /// `quantizedMean` on the input's grid; given `mean` for both, the weights' share alone, (W_q − W)·E[x]. The one
    /// bias correction: `QuantizedModel(fp32:statistics:calibration:)` takes it from the calibration's channel means,
    /// `apply` from the layer inputs' moments.
    static func meanShift(_ layer: LinearWeights, _ q: QuantizedTensor, mean: [Double], quantizedMean rounded: [Double]) -> [Double] {
        let k = layer.inFeatures
        return (0 ..< layer.outFeatures).map { o in
            var sum = 0.0
            let s = Double(q.scale[o])
            for i in 0 ..< k {
                sum += Double(q.values[o * k + i]) * s * rounded[i] - Double(layer.weight[o * k + i]) * mean[i]
            }
            return sum
        }
    }

    /// Mean over outputs of E[(w_o·x)²] = w_oᵀ·H·w_o.
    static func outputPower(_ layer: LinearWeights, _ h: [Double]) -> Double {
        let k = layer.inFeatures
        var total = 0.0
        for o in 0 ..< layer.outFeatures {
            total += quadratic(k, h: h) { Double(layer.weight[o * k + $0]) }
        }
        return total / Double(max(layer.outFeatures, 1))
    }

    /// SQNR of the layer's output with its weights quantized as `q`, over inputs with second moments `h`.
    static func sqnr(_ layer: LinearWeights, _ q: QuantizedTensor, _ h: [Double]) -> Double? {
        let k = layer.inFeatures
        var signal = 0.0, noise = 0.0
        for o in 0 ..< layer.outFeatures {
            let s = Double(q.scale[o])
            signal += quadratic(k, h: h) { Double(layer.weight[o * k + $0]) }
            noise += quadratic(k, h: h) { Double(layer.weight[o * k + $0]) - Double(q.values[o * k + $0]) * s }
        }
        return noise > 0 && signal > 0 ? 10 * log10(signal / noise) : nil
    }

    /// vᵀ·H·v for v given element by element.
    private static func quadratic(_ k: Int, h: [Double], _ v: (Int) -> Double) -> Double {
        let x = (0 ..< k).map(v)
        var total = 0.0
        h.withUnsafeBufferPointer { h in
            x.withUnsafeBufferPointer { x in
                for i in 0 ..< k where x[i] != 0 {
                    var row = 0.0
                    for j in 0 ..< k { row += h[i * k + j] * x[j] }
                    total += x[i] * row
                }
            }
        }
        return total
    }
}
