#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// SmoothQuant-style per-channel smoothing of the decoder's inputs (every stage's output) and of its fused map:
/// the activations whose u8 grids cost most where the logits' margins are small, because their errors reach
/// the classifier through linear maps only, and the deepest stages' errors are spread over many pixels by the
/// upsampling. Each of those grids is one for all channels, so a channel with a small range gets few of its steps.
/// Both rewrites leave the fp32 function unchanged (up to float rounding) and cost nothing at run time:
///
/// - stage i's output is its closing LayerNorm's γ⊙n + β: channel c divided by s_c is γ_c/s_c and β_c/s_c; the
///   readers' columns c — the decoder's projection of stage i, and the next stage's patch embedding (all its taps
///   of channel c) — are multiplied by s_c;
/// - the fused map is ReLU(Σ_i W'_i·x_i + b'); ReLU(z/s) = ReLU(z)/s for s > 0, so dividing every projection's
///   row c and the bias's entry c by s_c divides fused channel c by s_c; the classifier's (or each task map's)
///   column c is multiplied by s_c.
///
/// The scales and α per point are chosen as `ChannelSmoothing.choose` does, against the decoder projection of
/// the stage (for a stage's output) or the classifier / task maps (for the fused map).
public enum DecoderSmoothing {
    /// α candidates: the fused map and stage outputs gain from balancing fully where their readers' weights are even.
    public static let alphas: [Double] = [0, 0.25, 0.5, 0.75, 1]

    /// The points whose channel ranges `smoothing` needs: every stage's output and the fused map.
    public static func points(of weights: MTLSegFormerWeights) -> Set<QuantPoint> {
        Set(weights.stages.indices.map { QuantPoint.stageOutput($0) } + [.fused])
    }

    /// `ranges`: per point, every channel's largest |value| (`ChannelRangeObserver`).
    public static func smoothing(_ weights: MTLSegFormerWeights, ranges: [QuantPoint: [Float]])
        -> (weights: MTLSegFormerWeights, choices: [ChannelSmoothing.Choice]) {
        var choices: [ChannelSmoothing.Choice] = []
        var stageScales: [Int: [Double]] = [:]
        for (i, projection) in weights.decoder.stageProjections.enumerated() {
            guard let r = ranges[.stageOutput(i)], r.count == projection.inFeatures else { continue }
            let (s, choice) = ChannelSmoothing.choose(output: projection, ranges: r.map(Double.init), alphas: alphas)
            choices.append(choice)
            if choice.alpha > 0 { stageScales[i] = s }
        }
        // The fused map's readers, stacked into one layer for the choice: the classifier, or every task's map.
        let readers = weights.classifier.map { [$0] } ?? weights.heads.map(\.taskMap)
        var fusedScales: [Double]?
        let width = weights.decoder.width
        if let r = ranges[.fused], r.count == width, !readers.isEmpty {
            let stacked = FloatBuffer(readers.flatMap(\.weight.array))
            let reader = LinearWeights(name: readers.map(\.name).joined(separator: "+"), layout: .linear, inFeatures: width,
                                       outFeatures: readers.reduce(0) { $0 + $1.outFeatures }, weight: stacked, bias: nil)
            let (s, choice) = ChannelSmoothing.choose(output: reader, ranges: r.map(Double.init), alphas: alphas)
            choices.append(choice)
            if choice.alpha > 0 { fusedScales = s }
        }

        // Which layer reads which stage's output, and how many channels that output has.
        var readerStage: [String: Int] = [:]
        for (i, projection) in weights.decoder.stageProjections.enumerated() { readerStage[projection.name] = i }
        for i in weights.stages.indices.dropFirst() { readerStage[weights.stages[i].patchEmbedding.name] = i - 1 }
        let projectionNames = Set(weights.decoder.stageProjections.map(\.name))
        let fusedReaders = Set(readers.map(\.name))
        let smoothed = weights.mappingLayers { layer in
            var layer = layer
            if let i = readerStage[layer.name], let s = stageScales[i] {
                layer = ChannelSmoothing.multiplyingColumns(layer, by: s)
            }
            if let s = fusedScales {
                if projectionNames.contains(layer.name) { layer = ChannelSmoothing.dividingRows(layer, by: s) }
                if fusedReaders.contains(layer.name) { layer = ChannelSmoothing.multiplyingColumns(layer, by: s) }
            }
            return layer
        }
        .replacing(stageNorm: { i, norm in
            guard let s = stageScales[i] else { return norm }
            return LayerNormWeights(gamma: FloatBuffer((0 ..< s.count).map { Float(Double(norm.gamma[$0]) / s[$0]) }),
                                    beta: FloatBuffer((0 ..< s.count).map { Float(Double(norm.beta[$0]) / s[$0]) }))
        }, decoderBias: { bias in
            guard let s = fusedScales else { return bias }
            return FloatBuffer((0 ..< s.count).map { Float(Double(bias[$0]) / s[$0]) })
        })
        return (smoothed, choices)
    }
}
