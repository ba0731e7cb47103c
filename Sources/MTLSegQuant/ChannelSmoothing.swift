#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// What the two SmoothQuant-style rewrites (Xiao et al. 2022; `AttentionSmoothing`, `DecoderSmoothing`) share: how a
/// point's per-channel scales are chosen, and how a layer's rows or columns take them.
///
/// A u8 activation grid is one for all of a point's channels, so a channel with a small range gets few of its
/// steps. Dividing channel c by s_c where it is made and multiplying its reader's column c by s_c leaves the fp32
/// function unchanged (up to float rounding) while the grid sees x_c / s_c.
///
/// s_c = r_c^α / w_c^(1−α) (r_c: the channel's largest |value| on the calibration images; w_c: the largest |weight|
/// of the reader's column c), normalised to a geometric mean of 1. α is chosen from the caller's candidates by the
/// noise it predicts: the activation grid's step² · Σ_c s_c²·‖W_c‖² plus the int8 weights' step² · Σ_c (r_c / s_c)²
/// summed over the rows; α = 0 (no smoothing) is a candidate.
public enum ChannelSmoothing {
    /// What smoothing one point chose.
    public struct Choice: Codable, Equatable {
        /// The layer whose columns the scales multiply (attention: the output projection; the decoder: the reader of
        /// the point it balances).
        public var layer: String
        public var alpha: Double
        /// Predicted output noise with no smoothing over that with the chosen α, in dB (0 for α = 0).
        public var predictedGain: Double

        enum CodingKeys: String, CodingKey { case layer, alpha, predictedGain = "predicted_gain_db" }
    }

    /// The scales for a point read by `output` whose channels range up to `ranges`, and the α they were made with.
    static func choose(output: LinearWeights, ranges r: [Double], alphas: [Double]) -> ([Double], Choice) {
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
