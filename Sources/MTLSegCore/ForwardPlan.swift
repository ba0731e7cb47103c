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

    /// Element counts of the arena's regions (ForwardSizes works them out).
    private let sizes: ForwardSizes<Int>
    var imageCount: Int { sizes.image }
    var stageOutputCounts: [Int] { sizes.stageOutputs }
    var tokenCount: Int { sizes.tokens }
    var columnCount: Int { sizes.columns }
    var reducedCount: Int { sizes.reduced }
    var scoreCount: Int { sizes.scores }
    var hiddenCount: Int { sizes.hidden }
    var decoderCount: Int { sizes.decoder }
    var taskMapCount: Int { sizes.taskMaps }
    var gateCount: Int { sizes.gates }
    var logitsCount: Int { sizes.logits }

    public init(description: ModelDescription, height: Int, width: Int) {
        let e = description.encoder
        input = MapSize(height: height, width: width)
        sizes = ForwardSizes(description: description, height: height, width: width)
        stages = sizes.stages.enumerated().map { i, stage in
            StageShape(tokens: MapSize(height: stage.height, width: stage.width),
                       reduced: MapSize(height: stage.reducedHeight, width: stage.reducedWidth),
                       inChannels: stage.inChannels, channels: stage.channels, hiddenChannels: stage.hiddenChannels,
                       heads: e.numAttentionHeads[i], patchSize: e.patchSizes[i], srRatio: e.srRatios[i],
                       attentionRowBlock: stage.attentionRowBlock)
        }
        stageSizes = stages.map(\.tokens)
        reducedSizes = stages.map(\.reduced)
        attentionRowBlocks = stages.map(\.attentionRowBlock)
    }

    /// The logits' grid: the first stage's, a quarter of the input.
    public var outputSize: MapSize { stageSizes[0] }

    /// Bytes of a u8 row of `channels` values in the int8 engine's maps: a multiple of 16, so of every
    /// kernel set's k-group (the kernels read whole groups).
    static func byteRowStride(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// Floats of activation memory one forward pass uses.
    public func arenaFloats(taskCount: Int) -> Int { sizes.arenaFloats(taskCount: taskCount) }
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
