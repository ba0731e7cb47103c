/// Spatial size of a feature map.
public struct MapSize: Equatable, CustomStringConvertible, Sendable {
    public let height: Int
    public let width: Int
    public var pixels: Int { height * width }
    public var description: String { "\(width)x\(height)" }

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
}

/// Every shape of one forward pass at a fixed input size, and the activation
/// memory it needs. Made once when an engine is created; the forward pass then
/// runs in that memory and allocates nothing.
public struct ForwardPlan {
    public let input: MapSize
    /// Per stage: the token grid, and the key/value grid after spatial reduction.
    public let stageSizes: [MapSize]
    public let reducedSizes: [MapSize]
    /// Rows of attention scores computed at once, per stage (bounds the score buffer).
    public let attentionRowBlocks: [Int]
    /// Per stage, every shape its buffers are sized from (both engines size theirs from these).
    let stages: [StageShape]

    /// One encoder stage's shapes.
    struct StageShape {
        /// The token grid, and the key/value grid after spatial reduction.
        let tokens: MapSize
        let reduced: MapSize
        /// Channels of the stage's input (the previous stage's, or the image's), of its tokens, of its Mix-FFN's hidden layer.
        let inChannels: Int
        let channels: Int
        let hiddenChannels: Int
        let heads: Int
        let patchSize: Int
        let srRatio: Int
        let attentionRowBlock: Int

        var headDim: Int { channels / heads }
    }

    /// Element counts of the arena's regions.
    let imageCount: Int
    let stageOutputCounts: [Int]
    let tokenCount: Int
    let columnCount: Int
    let reducedCount: Int
    let scoreCount: Int
    let hiddenCount: Int
    let decoderCount: Int
    let taskMapCount: Int
    let gateCount: Int
    let logitsCount: Int

    /// Largest score block kept at once: 64 Ki floats (256 KiB, within L2).
    static let scoreBudget = 1 << 13

    public init(description: ModelDescription, height: Int, width: Int) {
        let e = description.encoder
        input = MapSize(height: height, width: width)
        var shapes: [StageShape] = []
        var current = input
        var tokens = 0, columns = 0, reducedTokens = 0, scores = 0, hidden = 0, stageOutputs: [Int] = []
        for i in 0 ..< e.stageCount {
            let k = e.patchSizes[i], s = e.strides[i], p = k / 2
            let inChannels = i == 0 ? e.numChannels : e.hiddenSizes[i - 1]
            let next = MapSize(height: (current.height + 2 * p - k) / s + 1, width: (current.width + 2 * p - k) / s + 1)
            let c = e.hiddenSizes[i], sr = e.srRatios[i]
            let kv = sr > 1 ? MapSize(height: next.height / sr, width: next.width / sr) : next
            let rowBlock = max(1, min(next.pixels, Self.scoreBudget / max(kv.pixels, 1)))
            shapes.append(StageShape(tokens: next, reduced: kv, inChannels: inChannels, channels: c, hiddenChannels: c * e.mlpRatios[i],
                                     heads: e.numAttentionHeads[i], patchSize: k, srRatio: sr, attentionRowBlock: rowBlock))
            stageOutputs.append(next.pixels * c)
            tokens = max(tokens, next.pixels * c)
            columns = max(columns, next.pixels * k * k * inChannels, kv.pixels * sr * sr * c)
            reducedTokens = max(reducedTokens, kv.pixels * c)
            scores = max(scores, rowBlock * kv.pixels)
            hidden = max(hidden, next.pixels * c * e.mlpRatios[i])
            current = next
        }
        stages = shapes
        stageSizes = shapes.map(\.tokens)
        reducedSizes = shapes.map(\.reduced)
        attentionRowBlocks = shapes.map(\.attentionRowBlock)
        imageCount = height * width * e.numChannels
        stageOutputCounts = stageOutputs
        tokenCount = tokens
        columnCount = columns
        reducedCount = reducedTokens
        scoreCount = scores
        hiddenCount = hidden
        let d = description.decoderHiddenSize
        let decoderPixels = shapes[0].tokens.pixels
        decoderCount = decoderPixels * d
        let taskCount = description.tasks.count
        taskMapCount = taskCount > 1 ? decoderPixels * d : 0
        gateCount = decoderPixels
        logitsCount = decoderPixels * (description.tasks.map(\.classCount).max() ?? 1)
    }

    /// The logits' grid: the first stage's, a quarter of the input.
    public var outputSize: MapSize { stageSizes[0] }

    /// Bytes of a u8 row of `channels` values in the int8 engine's maps: a multiple of 16, so of every
    /// kernel set's k-group (the kernels read whole groups).
    static func byteRowStride(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// Floats of activation memory one forward pass uses.
    public func arenaFloats(taskCount: Int) -> Int {
        imageCount + stageOutputCounts.reduce(0, +) + 4 * tokenCount + columnCount + 3 * reducedCount + scoreCount
            + 2 * hiddenCount + decoderCount + (taskCount > 1 ? (taskCount + 2) * taskMapCount : 0) + 3 * gateCount + logitsCount
    }
}

/// One block of 64-byte-aligned, zeroed memory cut into the regions a forward pass needs.
final class ActivationArena {
    private let memory: UnsafeMutableRawPointer
    /// Bytes of `memory`.
    let byteCount: Int
    private var used = 0

    init(bytes: Int) {
        byteCount = max(bytes, 64)
        memory = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// Room for `floats` floats and some slack.
    convenience init(floats: Int) { self.init(bytes: (floats + 1024) * MemoryLayout<Float>.stride) }

    deinit { memory.deallocate() }

    /// The next region of `count` values of `type`, starting on a 64-byte boundary.
    func take<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let start = used
        used += (count * MemoryLayout<T>.stride + 63) / 64 * 64
        precondition(used <= byteCount, "activation arena overflow: the plan undercounted")
        return (memory + start).bindMemory(to: T.self, capacity: count)
    }

    /// The next region of `count` floats, starting on a 64-byte boundary.
    func take(_ count: Int) -> UnsafeMutablePointer<Float> { take(Float.self, count: count) }
}
