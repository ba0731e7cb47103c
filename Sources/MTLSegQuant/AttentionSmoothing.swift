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
/// The scales and α per block are chosen by `ChannelSmoothing.choose`, against the output projection.
public enum AttentionSmoothing {
    public static let alphas: [Double] = [0, 0.25, 0.5, 0.75]

    /// The attention points whose channel ranges `smoothing` needs.
    public static func points(of weights: MTLSegFormerWeights) -> Set<QuantPoint> {
        var points = Set<QuantPoint>()
        for (i, stage) in weights.stages.enumerated() {
            for j in stage.blocks.indices { points.insert(QuantPoint.attention(i, j)) }
        }
        return points
    }

    /// `ranges`: per attention point, every channel's largest |value| (`ChannelRangeObserver`).
    public static func smoothing(_ weights: MTLSegFormerWeights, ranges: [QuantPoint: [Float]]) -> (weights: MTLSegFormerWeights, choices: [ChannelSmoothing.Choice]) {
        var scales: [String: [Double]] = [:]  // by value and output layer names
        var choices: [ChannelSmoothing.Choice] = []
        for (i, stage) in weights.stages.enumerated() {
            for (j, block) in stage.blocks.enumerated() {
                guard let r = ranges[QuantPoint.attention(i, j)], r.count == block.output.inFeatures else { continue }
                let (s, choice) = ChannelSmoothing.choose(output: block.output, ranges: r.map(Double.init), alphas: alphas)
                choices.append(choice)
                guard choice.alpha > 0 else { continue }
                scales[block.value.name] = s
                scales[block.output.name] = s
            }
        }
        let valueNames = Set(weights.stages.flatMap { $0.blocks.map(\.value.name) })
        let smoothed = weights.mappingLayers { layer in
            guard let s = scales[layer.name] else { return layer }
            return valueNames.contains(layer.name) ? ChannelSmoothing.dividingRows(layer, by: s) : ChannelSmoothing.multiplyingColumns(layer, by: s)
        }
        return (smoothed, choices)
    }
}
