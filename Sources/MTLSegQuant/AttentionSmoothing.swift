#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// SmoothQuant-style per-channel smoothing (Xiao et al. 2022) of attention's output, the input of the output
/// projection, which runs on one u8 grid for all its channels: a channel with a small range gets few of the
/// grid's steps. Attention's output is a softmax-weighted average of the values, so channel c of it scales
/// with the value projection's output c. Dividing the value projection's row c and bias c by s_c and
/// multiplying the output projection's column c by s_c leaves the fp32 function unchanged (exactly, up to
/// float rounding) while the grid sees x_c / s_c. The int8 attention's per-frame value grid sees the same
/// balanced channels.
///
/// s_c = r_c^α / w_c^(1−α) (r_c: the channel's largest |value| on the calibration images; w_c: the largest
/// |weight| of the output projection's column c), normalised to a geometric mean of 1. The calibrator chooses
/// α per block, from `alphas`, by the noise it predicts: the activation grid's step² · Σ_c s_c²·‖W_c‖² plus the
/// int8 weights' step² · Σ_c (r_c / s_c)² summed over the rows; α = 0 (no smoothing) is a candidate.
public enum AttentionSmoothing {
    public static let alphas: [Double] = [0, 0.25, 0.5, 0.75]

    /// What smoothing one block chose.
    public struct Choice: Codable, Equatable {
        /// The output projection's name.
        public var layer: String
        public var alpha: Double
        /// Predicted output noise with no smoothing over that with the chosen α, in dB (0 for α = 0).
        public var predictedGain: Double

        enum CodingKeys: String, CodingKey { case layer, alpha, predictedGain = "predicted_gain_db" }
    }

    /// The attention points whose channel ranges `smoothing` needs.
    public static func points(of weights: MTLSegFormerWeights) -> Set<QuantPoint> {
        var points = Set<QuantPoint>()
        for (i, stage) in weights.stages.enumerated() {
            for j in stage.blocks.indices { points.insert(QuantPoint.attention(i, j)) }
        }
        return points
    }

    /// `ranges`: per attention point, every channel's largest |value| (`ChannelRangeObserver`).
    public static func smoothing(_ weights: MTLSegFormerWeights, ranges: [QuantPoint: [Float]]) -> (weights: MTLSegFormerWeights, choices: [Choice]) {
        var scales: [String: [Double]] = [:]  // by value and output layer names
        var choices: [Choice] = []
        for (i, stage) in weights.stages.enumerated() {
            for (j, block) in stage.blocks.enumerated() {
                guard let r = ranges[QuantPoint.attention(i, j)], r.count == block.output.inFeatures else { continue }
                let (s, choice) = choose(output: block.output, ranges: r.map(Double.init))
                choices.append(choice)
                guard choice.alpha > 0 else { continue }
                scales[block.value.name] = s
                scales[block.output.name] = s
            }
        }
        let valueNames = Set(weights.stages.flatMap { $0.blocks.map(\.value.name) })
        let smoothed = weights.mappingLayers { layer in
            guard let s = scales[layer.name] else { return layer }
            return valueNames.contains(layer.name) ? dividingRows(layer, by: s) : multiplyingColumns(layer, by: s)
        }
        return (smoothed, choices)
    }

    static func choose(output: LinearWeights, ranges r: [Double], alphas: [Double] = alphas) -> ([Double], Choice) {
        let n = output.outFeatures, k = output.inFeatures
        var columnMax = [Double](repeating: 0, count: k), columnPower = columnMax
        for o in 0 ..< n {
            for c in 0 ..< k {
                let w = Double(output.weight[o * k + c])
                columnMax[c] = max(columnMax[c], abs(w))
                columnPower[c] += w * w
            }
        }
        func noise(_ s: [Double]) -> Double {
            let step = (0 ..< k).map { r[$0] / s[$0] }.max() ?? 0
            let activation = step * step * (0 ..< k).reduce(0.0) { $0 + s[$1] * s[$1] * columnPower[$1] }
            var weights = 0.0
            let inputPower = (0 ..< k).reduce(0.0) { $0 + r[$1] * r[$1] / (s[$1] * s[$1]) }
            for o in 0 ..< n {
                var rowMax = 0.0
                for c in 0 ..< k { rowMax = max(rowMax, abs(Double(output.weight[o * k + c])) * s[c]) }
                weights += rowMax * rowMax * inputPower
            }
            // u8 over [−max, max] against int8 over the same: steps of 2·max/255 and max/127.
            return activation * pow(2.0 / 255, 2) + weights * pow(1.0 / 127, 2)
        }
        let none = [Double](repeating: 1, count: k)
        let baseline = noise(none)
        var best = (noise: baseline, alpha: 0.0, scales: none)
        for alpha in alphas where alpha > 0 {
            var s = (0 ..< k).map { c -> Double in
                guard r[c] > 0, columnMax[c] > 0 else { return 1 }
                return pow(r[c], alpha) / pow(columnMax[c], 1 - alpha)
            }
            // A geometric mean of 1 keeps the layers' magnitudes where they were.
            let logMean = s.reduce(0.0) { $0 + log($1) } / Double(k)
            s = s.map { $0 / exp(logMean) }
            let predicted = noise(s)
            if predicted < best.noise { best = (predicted, alpha, s) }
        }
        let gain = best.noise > 0 && baseline > 0 ? 10 * log10(baseline / best.noise) : 0
        return (best.scales, Choice(layer: output.name, alpha: best.alpha, predictedGain: gain))
    }

    /// Row o and bias o divided by s_o: the layer's output channel o scaled by 1/s_o.
    static func dividingRows(_ layer: LinearWeights, by s: [Double]) -> LinearWeights {
        let k = layer.inFeatures
        let weight = FloatBuffer(count: layer.outFeatures * k)
        for o in 0 ..< layer.outFeatures {
            for i in 0 ..< k { weight[o * k + i] = Float(Double(layer.weight[o * k + i]) / s[o]) }
        }
        let bias = layer.bias.map { b in FloatBuffer((0 ..< layer.outFeatures).map { Float(Double(b[$0]) / s[$0]) }) }
        return LinearWeights(name: layer.name, layout: layer.layout, inFeatures: k, outFeatures: layer.outFeatures, weight: weight, bias: bias)
    }

    /// Column c multiplied by s_c: the layer reads input channel c scaled by 1/s_c as before. A convolution's
    /// columns are its patches' taps with the channels varying fastest, so column j reads channel j mod s.count.
    static func multiplyingColumns(_ layer: LinearWeights, by s: [Double]) -> LinearWeights {
        let k = layer.inFeatures
        precondition(k % s.count == 0, "\(layer.name): \(k) columns are not whole patches of \(s.count) channels")
        let weight = FloatBuffer(count: layer.outFeatures * k)
        for o in 0 ..< layer.outFeatures {
            for c in 0 ..< k { weight[o * k + c] = Float(Double(layer.weight[o * k + c]) * s[c % s.count]) }
        }
        return LinearWeights(name: layer.name, layout: layer.layout, inFeatures: k, outFeatures: layer.outFeatures, weight: weight,
                             bias: layer.bias)
    }
}
