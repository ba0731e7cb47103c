import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch

/// Runs an MTLSegFormer in fp32 at one input size. Its shape plan and activation
/// memory are fixed at creation; `run` reuses them every frame.
///
/// The forward pass reads like HF's `modeling_segformer.py`: per stage a patch
/// embedding, blocks of efficient self-attention and Mix-FFN, a closing
/// LayerNorm; then the all-MLP decoder, and the task heads. Maps are
/// channels-last throughout (token order, as HF's).
public final class FP32Engine: SegmentationEngine {
    public let weights: MTLSegFormerWeights
    public let plan: ForwardPlan
    private let arena: ActivationArena

    // Regions of the arena (see ForwardPlan for their sizes).
    private let image: UnsafeMutablePointer<Float>
    private let stageOutputs: [UnsafeMutablePointer<Float>]
    private let normed: UnsafeMutablePointer<Float>
    private let query: UnsafeMutablePointer<Float>
    private let attended: UnsafeMutablePointer<Float>
    private let projected: UnsafeMutablePointer<Float>
    private let columns: UnsafeMutablePointer<Float>
    private let reduced: UnsafeMutablePointer<Float>
    private let keys: UnsafeMutablePointer<Float>
    private let values: UnsafeMutablePointer<Float>
    private let scores: UnsafeMutablePointer<Float>
    private let hidden: UnsafeMutablePointer<Float>
    private let hiddenConvolved: UnsafeMutablePointer<Float>
    private let fused: UnsafeMutablePointer<Float>
    private let taskMaps: [UnsafeMutablePointer<Float>]
    private let crossMap: UnsafeMutablePointer<Float>
    private let combined: UnsafeMutablePointer<Float>
    private let gateSelf: UnsafeMutablePointer<Float>
    private let gateOther: UnsafeMutablePointer<Float>
    private let logitsRows: UnsafeMutablePointer<Float>
    /// Per task: logits [K_t][h/4][w/4], channels first, as PyTorch returns them.
    public let logits: [Tensor]
    public var precisionName: String { "fp32" }
    public var stageMilliseconds: [(name: String, ms: Double)] { timer.laps }
    public var profiling: Bool {
        get { timer.enabled }
        set { timer.enabled = newValue }
    }
    private var timer = StageTimer()
    /// The fp32 engine always writes its logits (its masks are their argmax).
    public var writesLogits = true

    public func mask(task t: Int) -> SegmentationMask { SegmentationMask(logits: logits[t]) }

    /// Sees the activations the int8 engine quantizes (calibration); nil in normal runs.
    public weak var observer: ActivationObserver?

    public init(weights: MTLSegFormerWeights, height: Int, width: Int) {
        precondition(weights.int8Layers.allSatisfy(\.hasFloatWeights), "the fp32 engine needs weights loaded with floatWeights: true")
        self.weights = weights
        let description = weights.description
        let plan = ForwardPlan(description: description, height: height, width: width)
        self.plan = plan
        let tasks = description.tasks.count
        let arena = ActivationArena(floats: plan.arenaFloats(taskCount: tasks))
        self.arena = arena
        image = arena.take(plan.imageCount)
        var stageOutputs: [UnsafeMutablePointer<Float>] = []
        for count in plan.stageOutputCounts { stageOutputs.append(arena.take(count)) }
        self.stageOutputs = stageOutputs
        normed = arena.take(plan.tokenCount)
        query = arena.take(plan.tokenCount)
        attended = arena.take(plan.tokenCount)
        projected = arena.take(plan.tokenCount)
        columns = arena.take(plan.columnCount)
        reduced = arena.take(plan.reducedCount)
        keys = arena.take(plan.reducedCount)
        values = arena.take(plan.reducedCount)
        scores = arena.take(plan.scoreCount)
        hidden = arena.take(plan.hiddenCount)
        hiddenConvolved = arena.take(plan.hiddenCount)
        fused = arena.take(plan.decoderCount)
        var taskMaps: [UnsafeMutablePointer<Float>] = []
        for _ in 0 ..< (tasks > 1 ? tasks : 0) { taskMaps.append(arena.take(plan.taskMapCount)) }
        self.taskMaps = taskMaps
        crossMap = tasks > 1 ? arena.take(plan.taskMapCount) : fused
        combined = tasks > 1 ? arena.take(plan.taskMapCount) : fused
        gateSelf = arena.take(plan.gateCount)
        gateOther = arena.take(plan.gateCount)
        logitsRows = arena.take(plan.logitsCount)
        let out = plan.outputSize
        logits = description.tasks.map { Tensor(shape: [$0.classCount, out.height, out.width], storage: FloatBuffer(count: $0.classCount * out.pixels)) }
    }

    /// Bytes of activation memory held for the forward pass.
    public var activationBytes: Int { arena.byteCount + logits.reduce(0) { $0 + $1.count * 4 } }

    /// Runs the network on `input`, a [channels][height][width] normalised image.
    /// The results are in `logits` until the next call.
    public func run(input: UnsafePointer<Float>) {
        let e = weights.description.encoder
        timer.start()
        ck_chw_to_hwc_f32(input, image, plan.input.height, plan.input.width, e.numChannels)
        var map = UnsafePointer(image)
        var size = plan.input
        var channels = e.numChannels
        for (i, stage) in weights.stages.enumerated() {
            runStage(i, stage, input: map, size: size, inChannels: channels)
            map = UnsafePointer(stageOutputs[i])
            size = plan.stageSizes[i]
            channels = stage.channels
            timer.lap("stage \(i + 1)")
        }
        decode()
        timer.lap("decoder")
        if weights.heads.isEmpty {
            classify(fused, with: weights.classifier!, into: logits[0])
        } else {
            runTaskHeads()
        }
        timer.lap("heads")
    }

    // MARK: Encoder

    private func runStage(_ i: Int, _ stage: StageWeights, input: UnsafePointer<Float>, size: MapSize, inChannels: Int) {
        let out = plan.stageSizes[i]
        let tokens = stageOutputs[i]
        let c = stage.channels
        // Overlapping patch embedding: a k×k, stride s, padding k/2 convolution, then LayerNorm.
        ck_im2col_hwc_f32(input, size.height, size.width, inChannels, stage.patchSize, stage.stride, stage.patchSize / 2,
                          out.height, out.width, columns, 0, out.height)
        linear(columns, rows: out.pixels, stage.patchEmbedding, into: tokens)
        ck_layer_norm_f32(tokens, tokens, out.pixels, c, stage.patchNorm.gamma.pointer, stage.patchNorm.beta.pointer, eps)
        for (j, block) in stage.blocks.enumerated() {
            runBlock(block, stage: stage, index: i, block: j, tokens: tokens)
        }
        ck_layer_norm_f32(tokens, tokens, out.pixels, c, stage.norm.gamma.pointer, stage.norm.beta.pointer, eps)
        observe(QuantPoint.stageOutput(i), tokens, rows: out.pixels, channels: c)
    }

    private func runBlock(_ block: BlockWeights, stage: StageWeights, index i: Int, block j: Int, tokens: UnsafeMutablePointer<Float>) {
        let size = plan.stageSizes[i]
        let n = size.pixels
        let c = stage.channels
        // h = h + Attention(LN1(h))
        ck_layer_norm_f32(tokens, normed, n, c, block.norm1.gamma.pointer, block.norm1.beta.pointer, eps)
        observe(QuantPoint.norm1(i, j), normed, rows: n, channels: c)
        selfAttention(block, stage: stage, index: i, block: j)
        observe(QuantPoint.attention(i, j), attended, rows: n, channels: c)
        linear(attended, rows: n, block.output, into: tokens, accumulate: true)
        // h = h + MixFFN(LN2(h)):  dense1 → depthwise 3×3 → GELU → dense2
        ck_layer_norm_f32(tokens, normed, n, c, block.norm2.gamma.pointer, block.norm2.beta.pointer, eps)
        observe(QuantPoint.norm2(i, j), normed, rows: n, channels: c)
        linear(normed, rows: n, block.dense1, into: hidden)
        observe(QuantPoint.hidden(i, j), hidden, rows: n, channels: block.dense1.outFeatures)
        ck_dwconv3x3_hwc_f32(hidden, hiddenConvolved, size.height, size.width, block.dense1.outFeatures,
                             block.depthwiseWeight.pointer, block.depthwiseBias.pointer)
        ck_gelu_erf_f32(hiddenConvolved, n * block.dense1.outFeatures)
        observe(QuantPoint.activation(i, j), hiddenConvolved, rows: n, channels: block.dense1.outFeatures)
        linear(hiddenConvolved, rows: n, block.dense2, into: tokens, accumulate: true)
    }

    /// Efficient self-attention of `normed` into `attended` (before the output projection).
    private func selfAttention(_ block: BlockWeights, stage: StageWeights, index i: Int, block j: Int) {
        let size = plan.stageSizes[i], kvSize = plan.reducedSizes[i]
        let n = size.pixels, m = kvSize.pixels
        let c = stage.channels
        linear(normed, rows: n, block.query, into: query)
        observe(QuantPoint.query(i, j), query, rows: n, channels: c)
        // Keys and values come from a spatially reduced map: a conv with kernel = stride = sr, then LayerNorm.
        var kvInput = UnsafePointer(normed)
        if let reduction = block.reduction, let norm = block.reductionNorm {
            ck_im2col_hwc_f32(normed, size.height, size.width, c, stage.srRatio, stage.srRatio, 0, kvSize.height, kvSize.width, columns,
                              0, kvSize.height)
            linear(columns, rows: m, reduction, into: reduced)
            ck_layer_norm_f32(reduced, reduced, m, c, norm.gamma.pointer, norm.beta.pointer, eps)
            observe(QuantPoint.keyValueInput(i, j), reduced, rows: m, channels: c)
            kvInput = UnsafePointer(reduced)
        }
        linear(kvInput, rows: m, block.key, into: keys)
        linear(kvInput, rows: m, block.value, into: values)
        // softmax(q·kᵀ/√d)·v per head, in blocks of query rows to bound the score buffer.
        let rowBlock = plan.attentionRowBlocks[i]
        var row = 0
        while row < n {
            let rows = min(rowBlock, n - row)
            attendHeads(queries: query + row * c, keys: keys, values: values, rows: rows, keyCount: m, channels: c, heads: stage.heads,
                        scores: scores, into: attended + row * c)
            row += rows
        }
    }

    // MARK: Decoder and heads

    /// F = ReLU(BN(linear_fuse(concat of upsampled linear_c(stage maps)))), through the folded weights.
    private func decode() {
        let out = plan.outputSize
        let d = weights.decoder.width
        for (i, projection) in weights.decoder.stageProjections.enumerated() {
            let size = plan.stageSizes[i]
            if size == out {
                linear(stageOutputs[i], rows: size.pixels, projection, into: fused, accumulate: i != 0)
            } else {
                linear(stageOutputs[i], rows: size.pixels, projection, into: projected)
                ck_resize_bilinear_hwc_f32(projected, size.height, size.width, d, fused, out.height, out.width, i == 0 ? 0 : 1)
            }
        }
        ck_add_bias_rows_f32(fused, out.pixels, d, weights.decoder.bias.pointer)
        ck_relu_f32(fused, out.pixels * d)
        observe(QuantPoint.fused, fused, rows: out.pixels, channels: d)
    }

    /// The task heads (Sources/ARCHITECTURE.md, The model): task maps, gated cross-task maps, combination, classifier.
    private func runTaskHeads() {
        let n = plan.outputSize.pixels
        let d = weights.decoder.width
        for (t, head) in weights.heads.enumerated() {
            linear(fused, rows: n, head.taskMap, into: taskMaps[t])
            ck_relu_f32(taskMaps[t], n * d)
        }
        for (t, head) in weights.heads.enumerated() {
            accumulateCrossTaskMap(head, task: t, taskMaps: taskMaps, pixels: n, width: d, gateSelf: gateSelf, gateOther: gateOther,
                                   into: crossMap)
            // Z_t = ReLU(BN(W·concat[F_t, G_t])): the concat is two products into one output.
            let combine = head.combine
            BLAS.linear(taskMaps[t], rows: n, inner: d, weight: combine.weight.pointer, outputs: d, ldw: 2 * d, into: combined)
            BLAS.linear(crossMap, rows: n, inner: d, weight: combine.weight.pointer + d, outputs: d, ldw: 2 * d,
                        into: combined, accumulate: true)
            observe(QuantPoint.taskConcat(t), taskMaps[t], rows: n, channels: d)
            observe(QuantPoint.taskConcat(t), crossMap, rows: n, channels: d)
            ck_add_bias_rows_f32(combined, n, d, combine.bias!.pointer)
            ck_relu_f32(combined, n * d)
            observe(QuantPoint.taskCombined(t), combined, rows: n, channels: d)
            classify(combined, with: head.classifier, into: logits[t])
        }
    }

    /// A 1×1 classifier over channels-last features, written channels-first.
    private func classify(_ features: UnsafeMutablePointer<Float>, with classifier: LinearWeights, into output: Tensor) {
        let out = plan.outputSize
        linear(features, rows: out.pixels, classifier, into: logitsRows)
        ck_hwc_to_chw_f32(logitsRows, output.pointer, out.height, out.width, classifier.outFeatures)
    }

    // MARK: Helpers

    private var eps: Float { weights.description.layerNormEps }

    private func observe(_ point: QuantPoint, _ values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        observer?.observe(point, values: values, rows: rows, channels: channels)
    }

    /// y = x·Wᵀ + b over `rows` rows (or y += … with `accumulate`).
    private func linear(_ x: UnsafePointer<Float>, rows: Int, _ layer: LinearWeights, into y: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false) {
        BLAS.linear(x, rows: rows, inner: layer.inFeatures, weight: layer.weight.pointer, outputs: layer.outFeatures,
                    into: y, accumulate: accumulate)
        if let bias = layer.bias { ck_add_bias_rows_f32(y, rows, layer.outFeatures, bias.pointer) }
    }

    private func linear(_ x: UnsafeMutablePointer<Float>, rows: Int, _ layer: LinearWeights, into y: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false) {
        linear(UnsafePointer(x), rows: rows, layer, into: y, accumulate: accumulate)
    }
}
