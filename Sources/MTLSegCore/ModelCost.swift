/// Multiply-accumulates of one forward pass, counted the way the SegFormer paper
/// counts them (convolutions, linears and the attention matmuls), both for the
/// network as defined and as this engine executes it (after the decoder fold).
public struct ModelCost: Sendable {
    public let definedMACs: Int
    public let executedMACs: Int
    /// Of those, the task heads' (or the one classifier's).
    public let headsMACs: Int

    public init(description d: ModelDescription, plan: ForwardPlan) {
        let e = d.encoder
        var encoder = 0
        var inChannels = e.numChannels
        for i in 0 ..< e.stageCount {
            let n = plan.stageSizes[i].pixels, m = plan.reducedSizes[i].pixels
            let c = e.hiddenSizes[i], k = e.patchSizes[i], sr = e.srRatios[i], hidden = c * e.mlpRatios[i]
            encoder += n * c * k * k * inChannels
            var block = n * c * c                       // query
            if sr > 1 { block += m * c * c * sr * sr }  // spatial reduction conv
            block += 2 * m * c * c                      // key, value
            block += 2 * n * m * c                      // q·kᵀ and p·v over all heads
            block += n * c * c                          // output projection
            block += 2 * n * c * hidden + n * hidden * 9 // Mix-FFN dense layers and depthwise conv
            encoder += e.depths[i] * block
            inChannels = c
        }
        let out = plan.outputSize.pixels
        let width = d.decoderHiddenSize
        let linearC = (0 ..< e.stageCount).reduce(0) { $0 + plan.stageSizes[$1].pixels * e.hiddenSizes[$1] * width }
        let fuse = out * width * e.stageCount * width
        let foldedDecoder = (0 ..< e.stageCount).reduce(0) { $0 + plan.stageSizes[$1].pixels * e.hiddenSizes[$1] * width }
        var heads = 0
        if d.tasks.count == 1 {
            heads = out * width * d.tasks[0].classCount
        } else {
            for task in d.tasks {
                heads += out * width * width                        // task map
                heads += (d.tasks.count - 1) * out * 2 * width      // gates
                heads += (d.tasks.count - 1) * out * width          // gated sum
                heads += out * 2 * width * width                    // combine
                heads += out * width * task.classCount              // classifier
            }
        }
        headsMACs = heads
        definedMACs = encoder + linearC + fuse + heads
        executedMACs = encoder + foldedDecoder + heads
    }
}
