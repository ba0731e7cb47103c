/// The sizes of one forward pass at an input size: every stage's grids and channels, and the element
/// counts of the activation arena's regions. Worked out here only, for `ForwardPlan` (in `Int`) and
/// for `MemoryPlan` (in `SaturatingCount`, before a model file is trusted).
struct ForwardSizes<Count: PlanCount> {
    struct Stage {
        /// The token grid, and the key/value grid after spatial reduction.
        let height: Count
        let width: Count
        let reducedHeight: Count
        let reducedWidth: Count
        /// Channels of the stage's input (the previous stage's, or the image's), of its tokens, of its Mix-FFN's hidden layer.
        let inChannels: Count
        let channels: Count
        let hiddenChannels: Count
        /// Rows of attention scores computed at once (bounds the score buffer).
        let attentionRowBlock: Count

        var pixels: Count { height * width }
        var reducedPixels: Count { reducedHeight * reducedWidth }
    }

    let stages: [Stage]
    /// Element counts of the arena's regions.
    let image: Count
    let stageOutputs: [Count]
    let tokens: Count
    let columns: Count
    let reduced: Count
    let scores: Count
    let hidden: Count
    let decoder: Count
    let taskMaps: Count
    let gates: Count
    let logits: Count

    /// Largest score block kept at once: 8 Ki floats (32 KiB, within L2).
    static var scoreBudget: Int { 1 << 13 }

    init(description: ModelDescription, height: Int, width: Int) {
        let e = description.encoder
        let one = Count(1)
        var current = (height: Count(height), width: Count(width))
        var stages: [Stage] = []
        var tokens = Count(0), columns = Count(0), reduced = Count(0), scores = Count(0), hidden = Count(0), stageOutputs: [Count] = []
        for i in 0 ..< e.stageCount {
            // An overlapping patch embedding: kernel k, stride s, padding k/2.
            let k = Count(e.patchSizes[i]), s = Count(e.strides[i]), p = Count(e.patchSizes[i] / 2)
            let next = (height: (current.height + p + p).minus(k) / s + one, width: (current.width + p + p).minus(k) / s + one)
            let sr = Count(e.srRatios[i])
            let kv = e.srRatios[i] > 1 ? (height: next.height / sr, width: next.width / sr) : next
            let pixels = next.height * next.width, kvPixels = kv.height * kv.width
            let rowBlock = max(one, min(pixels, Count(Self.scoreBudget) / max(kvPixels, one)))
            let inChannels = Count(i == 0 ? e.numChannels : e.hiddenSizes[i - 1])
            let c = Count(e.hiddenSizes[i])
            let stage = Stage(height: next.height, width: next.width, reducedHeight: kv.height, reducedWidth: kv.width,
                              inChannels: inChannels, channels: c, hiddenChannels: c * Count(e.mlpRatios[i]), attentionRowBlock: rowBlock)
            stages.append(stage)
            stageOutputs.append(pixels * c)
            tokens = max(tokens, pixels * c)
            columns = max(columns, pixels * k * k * inChannels, kvPixels * sr * sr * c)
            reduced = max(reduced, kvPixels * c)
            scores = max(scores, rowBlock * kvPixels)
            hidden = max(hidden, pixels * stage.hiddenChannels)
            current = next
        }
        self.stages = stages
        self.stageOutputs = stageOutputs
        self.tokens = tokens
        self.columns = columns
        self.reduced = reduced
        self.scores = scores
        self.hidden = hidden
        image = Count(height) * Count(width) * Count(e.numChannels)
        let decoderPixels = stages.first?.pixels ?? Count(0)
        decoder = decoderPixels * Count(description.decoderHiddenSize)
        taskMaps = description.tasks.count > 1 ? decoder : Count(0)
        gates = decoderPixels
        logits = decoderPixels * Count(description.tasks.map(\.classCount).max() ?? 1)
    }

    /// Floats of activation memory one forward pass uses.
    func arenaFloats(taskCount: Int) -> Count {
        let taskRegions = taskCount > 1 ? Count(taskCount + 2) * taskMaps : Count(0)
        return image + stageOutputs.reduce(Count(0), +) + Count(4) * tokens + columns + Count(3) * reduced + scores
            + Count(2) * hidden + decoder + taskRegions + Count(3) * gates + logits
    }
}
