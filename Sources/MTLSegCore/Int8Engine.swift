import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch

/// Runs an int8-quantized MTLSegFormer at one input size (the model: Sources/ARCHITECTURE.md).
///
/// Every linear layer and convolution except the depthwise 3×3 and the patch
/// embeddings kept out of int8 is an int8 matrix product (u8 activations × s8
/// weights, 32-bit sums) whose epilogue writes fp32 or requantized u8.
/// LayerNorm, GELU, softmax and the gates stay in fp32, fused with the
/// quantization around them. Each layer is made with the u8 grids of the
/// activations it reads and writes; all activation memory is one arena laid out
/// here, so `run` allocates nothing.
public final class Int8Engine {
    public let weights: MTLSegFormerWeights
    public let plan: ForwardPlan
    public let kernelName: String
    /// Per task: logits [K_t][h/4][w/4], as the fp32 engine's; written only while `writesLogits`.
    public let logits: [Tensor]
    /// false: a run writes only the masks and the pixels per class (the daemon's needs), not `logits`.
    public var writesLogits = true
    /// Milliseconds of the last run per part (encoder stages, then "decoder" and "heads"), when profiling.
    public var stageMilliseconds: [(name: String, ms: Double)] { timer.laps }
    public var profiling: Bool {
        get { timer.enabled }
        set {
            timer.enabled = newValue
            fusedHeads?.profiling = newValue
        }
    }

    private let pool: ThreadPool
    private let arena: ActivationArena
    private let buffers: Int8Buffers
    private let attention: Int8Attention
    /// false: attention's two products run in fp32 (BLAS).
    private let attentionInInt8: Bool
    private let stages: [StageLayers]
    private let decoder: DecoderLayers
    /// The heads run band by band (the default), or else (for tests: the reference they equal) map by map with
    /// `classifier` (one task) or `heads`.
    private let fusedHeads: Int8Heads?
    private let classifier: Int8Layer?
    private let heads: [HeadLayers]
    /// Per task, its gates over the full-resolution task maps (the unfused heads).
    private let headGates: [CrossTaskGates]
    /// Per task, the class of each output pixel ([h/4][w/4]) and pixels per class ([T][256]), from the fused heads.
    private let masks: [UnsafeMutablePointer<UInt8>]
    private let classCounts: UnsafeMutablePointer<Int>
    private var timer = StageTimer()
    /// The image of the current run (channels-first), which the first embedding reads in place.
    private var image: UnsafePointer<Float>?

    /// The u8 grids of the activations of one encoder block.
    private struct BlockGrids {
        let norm1, query, keyValueInput, attention, norm2, hidden, activation: QuantParams
    }

    private struct BlockLayers {
        let query, key, value, output, dense1, dense2: Int8Layer
        let reduction: Int8Layer?
        let grids: BlockGrids
    }

    /// How a stage's overlapping patch embedding runs.
    private enum Embedding {
        /// An int8 product over gathered patches of the previous stage's u8 output.
        case int8(Int8Layer, input: QuantParams)
        /// A 16-bit integer convolution (where the CPU has a fast kernel for it).
        case int16(Int16Embedding)
        /// An fp32 convolution, its weights packed for ck_conv2d_f32.
        case float(packed: AlignedBytes)
    }

    private struct StageLayers {
        let embedding: Embedding
        let blocks: [BlockLayers]
        /// The grid of the stage's output.
        let output: QuantParams
        /// Where the closing LayerNorm also writes fp32, for a next embedding that reads fp32 (16-bit or fp32); nil
        /// when the next stage reads the u8 output (or there is none).
        let floatOutput: UnsafeMutablePointer<Float>?
    }

    /// A decoder projection that reads its stage's output at 16 bits (or in fp32 where this CPU has no fast 16-bit
    /// kernel) instead of u8: a 1×1 convolution of the fp32 output of the stage's closing LayerNorm.
    private enum WideProjection {
        case int16(Int16Embedding)
        case float(LinearWeights)
    }

    private struct DecoderLayers {
        /// Per stage, its folded projection.
        let projections: [Int8Layer]
        /// By stage, the projections that read the stage's output wide (`QuantizationRecord.wideDecoderInputs`).
        let wide: [Int: WideProjection]
        /// The projections of stages 2… as ck_decoder_sum_quantize_u8 takes them.
        let maps: DecoderMaps
        let fused: QuantParams
    }

    private struct HeadLayers {
        let taskMap, combine, classifier: Int8Layer
        let concat, combined: QuantParams
    }

    /// `weights` must carry int8 forms of all int8 layers and `activations` a grid for every `QuantPoint` of the model.
    /// `attentionInInt8: false` runs attention's two products in fp32 (BLAS) instead. `fusedHeads: false` runs the heads
    /// map by map, with full-resolution intermediates (the reference the fused heads are tested against).
    /// `wideDecoderInputs`: the stages (not the first) whose decoder projection reads the stage's output at 16 bits;
    /// their projections must carry fp32 weights.
    public init(weights: MTLSegFormerWeights, activations: [QuantPoint: QuantParams], height: Int, width: Int, threads: Int = 1,
                attentionInInt8: Bool = true, fusedHeads: Bool = true, wideDecoderInputs: Set<Int> = [],
                kernels: UnsafePointer<ck_qgemm_kernels> = ck_qgemm_select()) throws {
        let d = weights.description
        for point in QuantPoint.all(for: d) where activations[point] == nil {
            throw ModelError.badMetadata(path: d.name, field: "\(QuantizationRecord.metadataKey).activations.\(point.name)",
                                         reason: "missing")
        }
        for layer in weights.int8Layers where layer.quantized == nil && !layer.hasFloatWeights {
            throw ModelError.wrongDType(path: d.name, tensor: layer.name + ".weight", expected: "I8 or F32", found: "nothing loaded")
        }
        precondition(16 % kernels.pointee.k_group == 0, "u8 row strides are multiples of 16")
        self.weights = weights
        kernelName = String(cString: kernels.pointee.name)
        let plan = ForwardPlan(description: d, height: height, width: width)
        self.plan = plan
        pool = ThreadPool(threads: threads)
        let grid = { (point: QuantPoint) in activations[point]! } // every point checked above

        // The layers, each packed for the grid of its input.
        let embeddings = Self.makeEmbeddings(weights, plan: plan, grid: grid, kernels: kernels)
        let blocks = weights.stages.enumerated().map { i, stage in Self.makeBlocks(stage, index: i, grid: grid, kernels: kernels) }
        let projections = weights.decoder.stageProjections.enumerated().map {
            Int8Layer($1, input: grid(.stageOutput($0)), kernels: kernels)
        }
        var wide: [Int: WideProjection] = [:]
        for i in wideDecoderInputs.sorted() {
            let field = "\(QuantizationRecord.metadataKey).wide_decoder_inputs"
            guard i >= 1 && i < weights.stages.count else {
                throw ModelError.badMetadata(path: d.name, field: field, reason: "stage \(i) is not one of stages 1..<\(weights.stages.count)")
            }
            let layer = weights.decoder.stageProjections[i], size = plan.stageSizes[i]
            guard layer.hasFloatWeights else {
                throw ModelError.wrongDType(path: d.name, tensor: layer.name + ".weight", expected: "F32 (listed in \(field))", found: "I8")
            }
            // At 16 bits wherever a SIMD kernel runs them: the fp32 form is a plain matrix product.
            wide[i] = Int16Embedding(layer, kernel: 1, stride: 1, inChannels: layer.inFeatures, input: size, output: size,
                                     speed: 1).map { .int16($0) } ?? .float(layer)
        }
        let fused = fusedHeads ? Int8Heads(weights: weights, grid: grid, outputPixels: plan.outputSize.pixels, kernels: kernels, pool: pool) : nil
        self.fusedHeads = fused
        classifier = fusedHeads ? nil : weights.classifier.map { Int8Layer($0, input: grid(.fused), kernels: kernels) }
        heads = fusedHeads ? [] : Self.makeHeads(weights, grid: grid, kernels: kernels)

        // The activation memory, sized for what the layers above need.
        var layers = blocks.joined().flatMap { [$0.query, $0.key, $0.value, $0.output, $0.dense1, $0.dense2] + [$0.reduction].compactMap { $0 } }
        layers += projections + [classifier].compactMap { $0 } + heads.flatMap { [$0.taskMap, $0.combine, $0.classifier] }
        layers += fused?.layers ?? []
        layers += embeddings.compactMap { if case let .int8(layer, _) = $0 { layer } else { nil } }
        let sizes = Int8Buffers.Sizes(
            plan: plan, description: d, kernels: kernels.pointee, threads: pool.threadCount, attentionInInt8: attentionInInt8,
            floatEmbeddingStages: embeddings.indices.filter { if case .float = embeddings[$0] { true } else { false } },
            int16MapCount: (embeddings.map { if case let .int16(e) = $0 { e.mapCount } else { 0 } }
                + wide.values.map { if case let .int16(e) = $0 { e.mapCount } else { 0 } }).max() ?? 0,
            layerScratchFloats: layers.map(\.scratchCount).max() ?? 0, fusedHeads: fusedHeads)
        arena = ActivationArena(bytes: sizes.arenaBytes)
        let buffers = Int8Buffers(sizes, arena: arena)
        self.buffers = buffers
        fused?.attach(bands: buffers.headBands, layerScratch: buffers.layerScratch)
        let taskMaps = buffers.taskMaps.map { UnsafePointer($0) }
        headGates = fusedHeads || weights.heads.isEmpty ? [] : weights.heads.map { CrossTaskGates($0, maps: taskMaps) }
        attention = Int8Attention(buffers: buffers.attention, pool: pool, kernels: kernels)
        self.attentionInInt8 = attentionInInt8

        stages = weights.stages.indices.map { i in
            // The next stage's embedding reads fp32 from `tokens` (16-bit: it quantizes them before writing `tokens`)
            // or from `floatMap` (fp32).
            let floatOutput: UnsafeMutablePointer<Float>? = switch i + 1 < embeddings.count ? embeddings[i + 1] : nil {
            case .int16?: buffers.tokens
            case .float?: buffers.floatMap
            case .int8?, nil: nil
            }
            return StageLayers(embedding: embeddings[i], blocks: blocks[i], output: grid(.stageOutput(i)), floatOutput: floatOutput)
        }
        decoder = DecoderLayers(projections: projections, wide: wide,
                                maps: DecoderMaps(maps: buffers.projections, sizes: Array(plan.stageSizes.dropFirst())),
                                fused: grid(.fused))
        let out = plan.outputSize
        logits = d.tasks.map { Tensor(shape: [$0.classCount, out.height, out.width], storage: FloatBuffer(count: $0.classCount * out.pixels)) }
        masks = d.tasks.map { _ in
            let mask = UnsafeMutablePointer<UInt8>.allocate(capacity: out.pixels)
            mask.initialize(repeating: 0, count: out.pixels)
            return mask
        }
        classCounts = .allocate(capacity: d.tasks.count * 256)
        classCounts.initialize(repeating: 0, count: d.tasks.count * 256)
    }

    deinit {
        masks.forEach { $0.deallocate() }
        classCounts.deallocate()
    }

    /// Per stage, its patch embedding: int8 where the weights are; else 16-bit where this CPU runs that faster than the
    /// fp32 convolution (AVX-512 VNNI; NEON's 16-bit products are no faster than its fp32 ones), else fp32.
    private static func makeEmbeddings(_ weights: MTLSegFormerWeights, plan: ForwardPlan, grid: (QuantPoint) -> QuantParams,
                                       kernels: UnsafePointer<ck_qgemm_kernels>) -> [Embedding] {
        let e = weights.description.encoder
        return weights.stages.enumerated().map { i, stage in
            let layer = stage.patchEmbedding
            if layer.quantized != nil {
                return .int8(Int8Layer(layer, input: grid(.stageOutput(i - 1)), kernels: kernels), input: grid(.stageOutput(i - 1)))
            }
            let channels = i == 0 ? e.numChannels : e.hiddenSizes[i - 1]
            if let int16 = Int16Embedding(layer, kernel: stage.patchSize, stride: stage.stride, inChannels: channels,
                                          input: i == 0 ? plan.input : plan.stageSizes[i - 1], output: plan.stageSizes[i],
                                          speed: 2) {
                return .int16(int16)
            }
            let packed = AlignedBytes(count: ck_conv2d_f32_packed_size(layer.outFeatures, stage.patchSize, channels) * 4)
            ck_conv2d_f32_pack(layer.weight.pointer, layer.outFeatures, stage.patchSize, channels,
                               packed.pointer.assumingMemoryBound(to: Float.self))
            return .float(packed: packed)
        }
    }

    /// Stage i's blocks, each layer packed for the grid of its own input.
    private static func makeBlocks(_ stage: StageWeights, index i: Int, grid: (QuantPoint) -> QuantParams,
                                   kernels: UnsafePointer<ck_qgemm_kernels>) -> [BlockLayers] {
        stage.blocks.enumerated().map { j, block in
            let norm1 = grid(.norm1(i, j))
            // Without a reduction, keys and values read LN1's output.
            let kv = block.reduction == nil ? norm1 : grid(.keyValueInput(i, j))
            let grids = BlockGrids(norm1: norm1, query: grid(.query(i, j)), keyValueInput: kv, attention: grid(.attention(i, j)),
                                   norm2: grid(.norm2(i, j)), hidden: grid(.hidden(i, j)), activation: grid(.activation(i, j)))
            return BlockLayers(
                query: Int8Layer(block.query, input: norm1, kernels: kernels),
                key: Int8Layer(block.key, input: kv, kernels: kernels),
                value: Int8Layer(block.value, input: kv, kernels: kernels),
                output: Int8Layer(block.output, input: grids.attention, kernels: kernels),
                dense1: Int8Layer(block.dense1, input: grids.norm2, kernels: kernels),
                dense2: Int8Layer(block.dense2, input: grids.activation, kernels: kernels),
                reduction: block.reduction.map { Int8Layer($0, input: norm1, kernels: kernels) },
                grids: grids)
        }
    }

    /// With two or more tasks, per task its head's layers and the grids of its combine conv's input and output.
    private static func makeHeads(_ weights: MTLSegFormerWeights, grid: (QuantPoint) -> QuantParams,
                                  kernels: UnsafePointer<ck_qgemm_kernels>) -> [HeadLayers] {
        weights.heads.enumerated().map { t, head in
            HeadLayers(taskMap: Int8Layer(head.taskMap, input: grid(.fused), kernels: kernels),
                       combine: Int8Layer(head.combine, input: grid(.taskConcat(t)), kernels: kernels),
                       classifier: Int8Layer(head.classifier, input: grid(.taskCombined(t)), kernels: kernels),
                       concat: grid(.taskConcat(t)), combined: grid(.taskCombined(t)))
        }
    }

    /// Bytes of activation memory a forward pass uses (the arena and the logits).
    public var activationBytes: Int { arena.byteCount + logits.reduce(0) { $0 + $1.count * 4 } }

    /// Runs the network on a [channels][height][width] normalised image; results are in `logits`.
    public func run(input: UnsafePointer<Float>) {
        timer.start()
        image = input
        defer { image = nil }
        for i in weights.stages.indices {
            runStage(i)
            timer.lap("stage \(i + 1)")
        }
        decode()
        timer.lap("decoder")
        if let fusedHeads {
            fusedHeads.run(fused: buffers.fused, fusedLd: Self.stride(weights.decoder.width), logits: logits, writeLogits: writesLogits,
                           masks: masks, counts: classCounts)
        } else if let classifier {
            classify(buffers.fused, with: classifier, into: logits[0])
        } else {
            runTaskHeads()
        }
        timer.lap("heads")
        if let fusedHeads, timer.enabled {
            for (name, ms) in fusedHeads.partMilliseconds { timer.record(name, ms: ms) }
        }
    }

    /// Task t's classes per pixel from the last run: the argmax of its logits (the first maximum wins), taken in the
    /// classifier's epilogue whether or not the logits were written.
    public func mask(task t: Int) -> SegmentationMask {
        guard fusedHeads != nil else { return SegmentationMask(logits: logits[t]) }
        let out = plan.outputSize
        return SegmentationMask(width: out.width, height: out.height, classes: Array(UnsafeBufferPointer(start: masks[t], count: out.pixels)))
    }

    /// Task t's pixels per class from the last run, counted with the argmax ([K_t]).
    public func pixelsPerClass(task t: Int) -> [Int] {
        let k = weights.description.tasks[t].classCount
        guard fusedHeads != nil else { return mask(task: t).pixelCounts(classCount: k) }
        return Array(UnsafeBufferPointer(start: classCounts + t * 256, count: k))
    }

    // MARK: Encoder

    private func runStage(_ i: Int) {
        let stage = weights.stages[i], layers = stages[i]
        let out = plan.stageSizes[i], c = stage.channels, tokens = buffers.tokens
        embed(i)
        pool.runRanges(count: out.pixels) { rows in
            ck_layer_norm_f32(tokens + rows.lowerBound * c, tokens + rows.lowerBound * c, rows.count, c,
                              stage.patchNorm.gamma.pointer, stage.patchNorm.beta.pointer, eps)
        }
        // (Indices, not enumerated(): unspecialised, in debug builds, that allocates per element.)
        for j in stage.blocks.indices {
            runBlock(stage.blocks[j], layers.blocks[j], stage: stage, index: i)
        }
        // The closing LayerNorm, written as u8 (the decoder's input, and an int8 next embedding's), and first as fp32
        // where the next embedding reads that.
        // A wide decoder input needs the fp32 output too; with no next embedding reading it, `attended` (free between
        // blocks) holds it.
        let output = layers.output, ld = Self.stride(c), outputQ = buffers.stageOutputs[i]
        let wide = decoder.wide[i]
        let floatOutput = layers.floatOutput ?? (wide != nil ? buffers.attended : nil)
        pool.runRanges(count: out.pixels) { rows in
            let offset = rows.lowerBound * c
            if let floats = floatOutput {
                ck_layer_norm_f32(tokens + offset, floats + offset, rows.count, c, stage.norm.gamma.pointer, stage.norm.beta.pointer, eps)
                ck_quantize_rows_u8(floats + offset, c, outputQ + rows.lowerBound * ld, ld, rows.count, c,
                                    output.inverseScale, output.zeroPoint)
            } else {
                ck_layer_norm_quantize_u8(tokens + offset, outputQ + rows.lowerBound * ld, ld, rows.count, c,
                                          stage.norm.gamma.pointer, stage.norm.beta.pointer, eps, output.inverseScale, output.zeroPoint)
            }
        }
        if let wide, let floatOutput { projectWide(wide, stage: i, floats: floatOutput) }
    }

    /// Stage i's decoder projection from the fp32 output of its closing LayerNorm, [pixels][C_i], into its
    /// low-resolution map (as the u8 path's gemm in `decode` would write it).
    private func projectWide(_ wide: WideProjection, stage i: Int, floats: UnsafeMutablePointer<Float>) {
        let size = plan.stageSizes[i], c = weights.stages[i].channels, d = weights.decoder.width, into = buffers.projections[i - 1]
        switch wide {
        case let .int16(conv):
            conv.run(source: floats, rowStride: size.width * c, pixelStride: c, channelStride: 1, map: buffers.int16Map, into: into, pool: pool)
        case let .float(layer):
            pool.runRanges(count: size.pixels) { rows in
                ck_matmul_transposed_f32(floats + rows.lowerBound * c, rows.count, c, layer.weight.pointer, d, into + rows.lowerBound * d)
            }
        }
    }

    /// The overlapping patch embedding of stage i into `tokens` (before its LayerNorm).
    private func embed(_ i: Int) {
        let stage = weights.stages[i], out = plan.stageSizes[i], tokens = buffers.tokens
        let input = i == 0 ? plan.input : plan.stageSizes[i - 1]
        let channels = i == 0 ? weights.description.encoder.numChannels : weights.stages[i - 1].channels
        // The image is channels-first; a previous stage's fp32 output is channels-last.
        let source = i == 0 ? image! : UnsafePointer(stages[i - 1].floatOutput)
        let rowStride = i == 0 ? input.width : input.width * channels
        let pixelStride = i == 0 ? 1 : channels, channelStride = i == 0 ? input.pixels : 1
        switch stages[i].embedding {
        case let .int8(layer, grid):
            // A k×k convolution over gathered patches of the previous stage's u8 output; padding is the zero point.
            let columnStride = Self.stride(stage.patchSize * stage.patchSize * channels)
            let previous = buffers.stageOutputs[i - 1], columns = buffers.columns
            pool.runRanges(count: out.height) { rows in
                ck_im2col_hwc_u8(previous, Self.stride(channels), input.height, input.width, channels, stage.patchSize, stage.stride,
                                 stage.patchSize / 2, out.height, out.width, UInt8(grid.zeroPoint), columns, columnStride,
                                 rows.lowerBound, rows.count)
            }
            gemm(layer, rows: out.pixels, a: columns, lda: columnStride, into: tokens, ldc: stage.channels, output: CK_QGEMM_OUT_F32)
        case let .int16(embedding):
            embedding.run(source: source!, rowStride: rowStride, pixelStride: pixelStride, channelStride: channelStride,
                          map: buffers.int16Map, into: tokens, pool: pool)
        case let .float(packed):
            let layer = stage.patchEmbedding, weights = UnsafePointer(packed.pointer.assumingMemoryBound(to: Float.self))
            let source = source!
            pool.runRanges(count: out.height) { rows in
                ck_conv2d_f32(source, input.height, input.width, channels, rowStride, pixelStride, channelStride, weights,
                              layer.outFeatures, stage.patchSize, stage.stride, stage.patchSize / 2, layer.bias?.pointer,
                              tokens, out.height, out.width, rows.lowerBound, rows.count)
            }
        }
    }

    private func runBlock(_ block: BlockWeights, _ layers: BlockLayers, stage: StageWeights, index i: Int) {
        let size = plan.stageSizes[i], grids = layers.grids, b = buffers
        let n = size.pixels, c = stage.channels, ld = Self.stride(c)
        // h = h + Attention(LN1(h))
        layerNormQuantized(rows: n, channels: c, block.norm1, into: b.normed, grid: grids.norm1)
        selfAttention(block, layers, stage: stage, index: i)
        gemm(layers.output, rows: n, a: b.attendedQ, lda: ld, into: b.tokens, ldc: c, output: CK_QGEMM_OUT_F32_ACCUMULATE)
        // h = h + MixFFN(LN2(h)): dense1 → depthwise 3×3 → GELU → dense2, u8 between them.
        layerNormQuantized(rows: n, channels: c, block.norm2, into: b.normed, grid: grids.norm2)
        let hidden = block.dense1.outFeatures, hiddenLd = Self.stride(hidden)
        gemm(layers.dense1, rows: n, a: b.normed, lda: ld, into: b.hidden, ldc: hiddenLd, output: CK_QGEMM_OUT_U8, outputGrid: grids.hidden)
        pool.runSlots(count: size.height) { rows, slot in
            ck_dwconv3x3_gelu_u8(b.hidden, hiddenLd, b.activated, hiddenLd, size.height, size.width, hidden,
                                 block.depthwiseWeight.pointer, block.depthwiseBias.pointer, grids.hidden.scale, grids.hidden.zeroPoint,
                                 grids.activation.inverseScale, grids.activation.zeroPoint, rows.lowerBound, rows.count,
                                 b.convScratch[slot])
        }
        gemm(layers.dense2, rows: n, a: b.activated, lda: hiddenLd, into: b.tokens, ldc: c, output: CK_QGEMM_OUT_F32_ACCUMULATE)
    }

    /// Efficient self-attention of the quantized LN1 output into `attendedQ` (u8, the output projection's input).
    private func selfAttention(_ block: BlockWeights, _ layers: BlockLayers, stage: StageWeights, index i: Int) {
        let size = plan.stageSizes[i], kvSize = plan.reducedSizes[i], grids = layers.grids, b = buffers
        let n = size.pixels, m = kvSize.pixels, c = stage.channels, ld = Self.stride(c)
        if attentionInInt8 {
            gemm(layers.query, rows: n, a: b.normed, lda: ld, into: b.queries, ldc: ld, output: CK_QGEMM_OUT_U8, outputGrid: grids.query)
        } else {
            gemm(layers.query, rows: n, a: b.normed, lda: ld, into: b.floatQueries, ldc: c, output: CK_QGEMM_OUT_F32)
        }
        // Keys and values come from a spatially reduced map: a conv with kernel = stride = sr, then LayerNorm.
        var kvInput = UnsafePointer(b.normed)
        if let reduction = layers.reduction, let norm = block.reductionNorm {
            let sr = stage.srRatio, columnStride = Self.stride(sr * sr * c)
            pool.runRanges(count: kvSize.height) { rows in
                ck_im2col_hwc_u8(b.normed, ld, size.height, size.width, c, sr, sr, 0, kvSize.height, kvSize.width,
                                 UInt8(grids.norm1.zeroPoint), b.columns, columnStride, rows.lowerBound, rows.count)
            }
            gemm(reduction, rows: m, a: b.columns, lda: columnStride, into: b.reduced, ldc: c, output: CK_QGEMM_OUT_F32)
            ck_layer_norm_quantize_u8(b.reduced, b.reducedQ, ld, m, c, norm.gamma.pointer, norm.beta.pointer, eps,
                                      grids.keyValueInput.inverseScale, grids.keyValueInput.zeroPoint)
            kvInput = UnsafePointer(b.reducedQ)
        }
        gemm(layers.key, rows: m, a: kvInput, lda: ld, into: b.keys, ldc: c, output: CK_QGEMM_OUT_F32)
        gemm(layers.value, rows: m, a: kvInput, lda: ld, into: b.values, ldc: c, output: CK_QGEMM_OUT_F32)
        if attentionInInt8 {
            attention.run(queries: b.queries, queryParams: grids.query, keys: b.keys, values: b.values, rows: n, keyCount: m, channels: c,
                          heads: stage.heads, rowBlock: plan.attentionRowBlocks[i], scratch: b.attended, outputParams: grids.attention,
                          into: b.attendedQ)
        } else {
            floatAttention(rows: n, keyCount: m, channels: c, heads: stage.heads, rowBlock: plan.attentionRowBlocks[i], output: grids.attention)
        }
    }

    /// softmax(q·kᵀ/√d)·v per head in fp32 (BLAS), a block of rows per thread at a time, each block quantized for
    /// the output projection while it is in cache.
    private func floatAttention(rows n: Int, keyCount m: Int, channels c: Int, heads: Int, rowBlock: Int, output: QuantParams) {
        let ld = Self.stride(c), b = buffers
        let blocks = (n + rowBlock - 1) / rowBlock
        pool.runSlots(count: blocks) { range, slot in
            for block in range {
                let row = block * rowBlock, count = min(rowBlock, n - row)
                attendHeads(queries: b.floatQueries + row * c, keys: b.keys, values: b.values, rows: count, keyCount: m, channels: c,
                            heads: heads, scores: b.scoreBlocks[slot], into: b.attended + row * c)
                ck_quantize_rows_u8(b.attended + row * c, c, b.attendedQ + row * ld, ld, count, c, output.inverseScale, output.zeroPoint)
            }
        }
    }

    // MARK: Decoder and heads

    /// F = ReLU(Σ_i upsample(stage_i · W'_iᵀ) + b'), the folded all-MLP decoder,
    /// written as u8. The deeper stages' projections are made whole at their own
    /// (small) resolutions; the full-resolution sum is only ever a band of rows.
    private func decode() {
        let out = plan.outputSize, d = weights.decoder.width, ld = Self.stride(d), b = buffers
        let projections = decoder.projections, maps = decoder.maps, fused = decoder.fused
        for i in 1 ..< projections.count where decoder.wide[i] == nil {
            gemm(projections[i], rows: plan.stageSizes[i].pixels, a: b.stageOutputs[i], lda: outputRowBytes(i), into: b.projections[i - 1], ldc: d,
                 output: CK_QGEMM_OUT_F32)
        }
        let bandRows = b.decoderBandRows
        let bands = (out.height + bandRows - 1) / bandRows
        let firstLd = outputRowBytes(0)
        pool.runSlots(count: bands) { range, slot in
            for band in range {
                let first = band * bandRows, rows = min(bandRows, out.height - first)
                let pixels = first * out.width ..< (first + rows) * out.width
                // The band buffer stands for rows first..<first+rows of the full map.
                let map = b.decoderBands[slot] - pixels.lowerBound * d
                projections[0].run(rows: pixels, a: b.stageOutputs[0], lda: firstLd, into: UnsafeMutableRawPointer(map), ldc: d,
                                   output: CK_QGEMM_OUT_F32, scratch: b.layerScratch[slot])
                ck_decoder_sum_quantize_u8(map + pixels.lowerBound * d, maps.count, maps.pointers, maps.heights, maps.widths, d,
                                           out.height, out.width, first, rows, weights.decoder.bias.pointer, fused.inverseScale,
                                           fused.zeroPoint, b.fused, ld, b.decoderRows[slot])
            }
        }
    }

    /// The task heads (Sources/ARCHITECTURE.md, The model) in int8: task maps, fp32 gates writing the combine's u8 input, combine,
    /// classifier.
    private func runTaskHeads() {
        let n = plan.outputSize.pixels, d = weights.decoder.width, ld = Self.stride(d), concatLd = Self.stride(2 * d), b = buffers
        for t in heads.indices {
            gemm(heads[t].taskMap, rows: n, a: b.fused, lda: ld, into: b.taskMaps[t], ldc: d, output: CK_QGEMM_OUT_F32, relu: true)
        }
        for t in heads.indices {
            let layers = heads[t]
            headGates[t].run(own: b.taskMaps[t], ld: d, pixels: n, channels: d, grid: layers.concat, into: b.concat, ldo: concatLd,
                             scratch: b.gateScratch)
            gemm(layers.combine, rows: n, a: b.concat, lda: concatLd, into: b.combined, ldc: ld, output: CK_QGEMM_OUT_U8, relu: true,
                 outputGrid: layers.combined)
            classify(b.combined, with: layers.classifier, into: logits[t])
        }
    }

    /// A 1×1 classifier over u8 features [pixels][stride(D)], written channels-first.
    private func classify(_ features: UnsafeMutablePointer<UInt8>, with layer: Int8Layer, into output: Tensor) {
        let out = plan.outputSize
        gemm(layer, rows: out.pixels, a: features, lda: Self.stride(weights.decoder.width), into: buffers.logitsRows,
             ldc: layer.outFeatures, output: CK_QGEMM_OUT_F32)
        ck_hwc_to_chw_f32(buffers.logitsRows, output.pointer, out.height, out.width, layer.outFeatures)
    }

    // MARK: Helpers

    private var eps: Float { weights.description.layerNormEps }

    private static func stride(_ channels: Int) -> Int { ForwardPlan.byteRowStride(channels) }

    /// Bytes of a u8 row of stage i's output.
    private func outputRowBytes(_ i: Int) -> Int { Self.stride(weights.stages[i].channels) }

    /// An int8 product split over the pool by rows (in whole tiles).
    private func gemm<A, C>(_ layer: Int8Layer, rows: Int, a: UnsafeMutablePointer<A>, lda: Int, into c: UnsafeMutablePointer<C>, ldc: Int,
                            output: ck_qgemm_output, relu: Bool = false, outputGrid: QuantParams? = nil) {
        gemm(layer, rows: rows, a: UnsafePointer(a), lda: lda, into: c, ldc: ldc, output: output, relu: relu, outputGrid: outputGrid)
    }

    private func gemm<A, C>(_ layer: Int8Layer, rows: Int, a: UnsafePointer<A>, lda: Int, into c: UnsafeMutablePointer<C>, ldc: Int,
                            output: ck_qgemm_output, relu: Bool = false, outputGrid: QuantParams? = nil) {
        let a = UnsafeRawPointer(a).assumingMemoryBound(to: UInt8.self), c = UnsafeMutableRawPointer(c), scratch = buffers.layerScratch
        pool.runSlots(count: rows, alignment: 16) { range, slot in
            layer.run(rows: range, a: a, lda: lda, into: c, ldc: ldc, output: output, relu: relu, outputParams: outputGrid,
                      scratch: scratch[slot])
        }
    }

    private func layerNormQuantized(rows n: Int, channels c: Int, _ norm: LayerNormWeights, into out: UnsafeMutablePointer<UInt8>,
                                    grid: QuantParams) {
        let ld = Self.stride(c), tokens = buffers.tokens
        pool.runRanges(count: n) { rows in
            ck_layer_norm_quantize_u8(tokens + rows.lowerBound * c, out + rows.lowerBound * ld, ld, rows.count, c,
                                      norm.gamma.pointer, norm.beta.pointer, eps, grid.inverseScale, grid.zeroPoint)
        }
    }
}

/// Pointers to the decoder's low-resolution projections and their sizes, in C arrays made once.
private final class DecoderMaps {
    let count: Int
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>?>
    let heights: UnsafeMutablePointer<Int>
    let widths: UnsafeMutablePointer<Int>

    init(maps: [UnsafeMutablePointer<Float>], sizes: [MapSize]) {
        precondition(maps.count <= Int(CK_DECODER_MAPS_MAX), "at most \(CK_DECODER_MAPS_MAX) encoder stages after the first")
        count = maps.count
        pointers = .allocate(capacity: max(1, count))
        heights = .allocate(capacity: max(1, count))
        widths = .allocate(capacity: max(1, count))
        for i in 0 ..< count {
            pointers[i] = UnsafePointer(maps[i])
            heights[i] = sizes[i].height
            widths[i] = sizes[i].width
        }
    }

    deinit {
        pointers.deallocate()
        heights.deallocate()
        widths.deallocate()
    }
}
