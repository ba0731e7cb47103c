import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch

/// Runs an int8-quantized MTLSegFormer at one input size (ARCHITECTURE §4).
///
/// Every linear layer and convolution except the depthwise 3×3 is an int8
/// matrix product (u8 activations × s8 weights, 32-bit sums) whose epilogue
/// writes fp32 or requantized u8. LayerNorm, GELU, softmax and the attention
/// matmuls stay in fp32, fused with the quantization around them. Buffers are
/// all made here; `run` allocates nothing.
public final class Int8Engine {
    public let weights: MTLSegFormerWeights
    public let plan: ForwardPlan
    public let kernelName: String
    /// Per task: logits [K_t][h/4][w/4], as the fp32 engine's.
    public let logits: [Tensor]
    /// Milliseconds of the last run per part (encoder stages, then "decoder" and "heads"), when profiling.
    public private(set) var stageMilliseconds: [(name: String, ms: Double)] = []
    public var profiling = false

    private let pool: ThreadPool
    private let activations: [String: QuantParams]
    private let stages: [StageLayers]
    private let decoderLayers: [Int8Layer]
    private let classifier: Int8Layer?
    private let heads: [HeadLayers]

    private struct BlockLayers {
        let query, key, value, output, dense1, dense2: Int8Layer
        let reduction: Int8Layer?
    }

    private struct StageLayers {
        /// nil for the first stage, whose convolution runs in fp32 on the image.
        let patchEmbedding: Int8Layer?
        let blocks: [BlockLayers]
    }

    private struct HeadLayers {
        let taskMap, combine, classifier: Int8Layer
    }

    // Buffers. u8 maps have rows of `stride(C)` bytes so the kernels can read whole k-groups.
    /// The fp32 input of a patch embedding that runs in fp32: the image, or the previous stage's output.
    private let floatMap: FloatBuffer
    /// Per stage, a patch embedding outside int8 as a 16-bit integer convolution, where this CPU runs one fast.
    private let int16Embeddings: [Int16Embedding?]
    /// The bordered int16 input map of the 16-bit embeddings (one at a time).
    private let int16Map: AlignedBytes
    /// Per stage, the weights of an fp32 patch embedding packed for ck_conv2d_f32 (nil for the others).
    private let packedFloatEmbeddings: [AlignedBytes?]
    /// The image of the current run (channels-first), which the first embedding reads in place.
    private var image: UnsafePointer<Float>?
    private let columnsQ: AlignedBytes
    private let tokens: FloatBuffer
    private let stageOutputsQ: [AlignedBytes]
    private let normedQ: AlignedBytes
    private let queryQ: AlignedBytes
    /// fp32 attention only: queries and one score block per thread.
    private let attentionInInt8: Bool
    private let queryF: FloatBuffer
    private let scoreBlocks: [FloatBuffer]
    private let attention: Int8Attention
    private let reduced: FloatBuffer
    private let reducedQ: AlignedBytes
    private let keys: FloatBuffer
    private let values: FloatBuffer
    private let attended: FloatBuffer
    private let attendedQ: AlignedBytes
    private let hiddenQ: AlignedBytes
    private let activatedQ: AlignedBytes
    private let convScratch: [FloatBuffer]
    /// The decoder's projections of stages 2…, and per thread a band of rows of the full-resolution sum.
    private let projections: [FloatBuffer]
    private let decoderBands: [FloatBuffer]
    private let decoderBandRows: Int
    /// The projections as ck_decoder_sum_quantize_u8 takes them.
    private let decoderMaps: DecoderMaps
    /// Per thread, one output row's worth of each projection blended vertically.
    private let decoderRowScratch: [FloatBuffer]
    private let fusedQ: AlignedBytes
    private let taskMaps: [FloatBuffer]
    private let crossMap: FloatBuffer
    private let concatQ: AlignedBytes
    private let combinedQ: AlignedBytes
    private let gateSelf: FloatBuffer
    private let gateOther: FloatBuffer
    private let logitsRows: FloatBuffer

    /// Bytes of a u8 row of `channels` values (a multiple of 16, so of every k-group).
    static func stride(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// `weights` must carry int8 forms of all int8 layers and `activations` a grid for every `QuantPoint`.
    /// `attentionInInt8: false` runs attention's two products in fp32 (BLAS) instead.
    public init(weights: MTLSegFormerWeights, activations: [String: QuantParams], height: Int, width: Int, threads: Int = 1,
                attentionInInt8: Bool = true, kernels: UnsafePointer<ck_qgemm_kernels> = ck_qgemm_select()) throws {
        let d = weights.description
        for point in QuantPoint.all(for: d) where activations[point] == nil {
            throw ModelError.badMetadata(path: d.name, field: "\(QuantizationRecord.metadataKey).activations.\(point)", reason: "missing")
        }
        for layer in weights.int8Layers where layer.quantized == nil && !layer.hasFloatWeights {
            throw ModelError.wrongDType(path: d.name, tensor: layer.name + ".weight", expected: "I8 or F32", found: "nothing loaded")
        }
        precondition(16 % kernels.pointee.k_group == 0, "u8 row strides are multiples of 16")
        self.weights = weights
        self.activations = activations
        kernelName = String(cString: kernels.pointee.name)
        let plan = ForwardPlan(description: d, height: height, width: width)
        self.plan = plan
        pool = ThreadPool(threads: threads)

        // Layers, each packed for the quantization of its own input.
        let e = d.encoder
        stages = weights.stages.enumerated().map { i, stage in
            let blocks = stage.blocks.enumerated().map { j, block -> BlockLayers in
                let norm1 = activations[QuantPoint.norm1(i, j)]!
                let kv = block.reduction == nil ? norm1 : activations[QuantPoint.keyValueInput(i, j)]!
                return BlockLayers(
                    query: Int8Layer(block.query, input: norm1, kernels: kernels),
                    key: Int8Layer(block.key, input: kv, kernels: kernels),
                    value: Int8Layer(block.value, input: kv, kernels: kernels),
                    output: Int8Layer(block.output, input: activations[QuantPoint.attention(i, j)]!, kernels: kernels),
                    dense1: Int8Layer(block.dense1, input: activations[QuantPoint.norm2(i, j)]!, kernels: kernels),
                    dense2: Int8Layer(block.dense2, input: activations[QuantPoint.activation(i, j)]!, kernels: kernels),
                    reduction: block.reduction.map { Int8Layer($0, input: norm1, kernels: kernels) })
            }
            let embedding = stage.patchEmbedding.quantized == nil ? nil
                : Int8Layer(stage.patchEmbedding, input: activations[QuantPoint.stageOutput(i - 1)]!, kernels: kernels)
            return StageLayers(patchEmbedding: embedding, blocks: blocks)
        }
        decoderLayers = weights.decoder.stageProjections.enumerated().map {
            Int8Layer($1, input: activations[QuantPoint.stageOutput($0)]!, kernels: kernels)
        }
        classifier = weights.classifier.map { Int8Layer($0, input: activations[QuantPoint.fused]!, kernels: kernels) }
        heads = weights.heads.enumerated().map { t, head in
            HeadLayers(taskMap: Int8Layer(head.taskMap, input: activations[QuantPoint.fused]!, kernels: kernels),
                       combine: Int8Layer(head.combine, input: activations[QuantPoint.taskConcat(t)]!, kernels: kernels),
                       classifier: Int8Layer(head.classifier, input: activations[QuantPoint.taskCombined(t)]!, kernels: kernels))
        }

        // Buffers, sized by the plan for the largest stage each serves.
        let stride = Self.stride
        var columns = 0, tokenFloats = 0, normed = 0, reducedFloats = 0, reducedBytes = 0, hidden = 0, maxHidden = 0
        var inChannels = e.numChannels
        for i in 0 ..< e.stageCount {
            let n = plan.stageSizes[i].pixels, m = plan.reducedSizes[i].pixels, c = e.hiddenSizes[i]
            let k = e.patchSizes[i], sr = e.srRatios[i]
            columns = max(columns, i == 0 ? 0 : n * stride(k * k * inChannels), m * stride(sr * sr * c))
            tokenFloats = max(tokenFloats, n * c)
            normed = max(normed, n * stride(c))
            reducedFloats = max(reducedFloats, m * c)
            reducedBytes = max(reducedBytes, m * stride(c))
            hidden = max(hidden, n * stride(c * e.mlpRatios[i]))
            maxHidden = max(maxHidden, c * e.mlpRatios[i])
            inChannels = c
        }
        let out = plan.outputSize.pixels
        let width = d.decoderHiddenSize
        // Patch embeddings outside int8 are direct convolutions on the image or on the previous stage's output:
        // in 16-bit integers where this CPU runs them fast, else in fp32.
        let int16Embeddings = weights.stages.enumerated().map { i, stage -> Int16Embedding? in
            guard stage.patchEmbedding.quantized == nil else { return nil }
            return Int16Embedding(stage.patchEmbedding, kernel: stage.patchSize, stride: stage.stride,
                                  inChannels: i == 0 ? e.numChannels : e.hiddenSizes[i - 1], input: i == 0 ? plan.input : plan.stageSizes[i - 1],
                                  output: plan.stageSizes[i])
        }
        self.int16Embeddings = int16Embeddings
        int16Map = AlignedBytes(count: 2 * (int16Embeddings.compactMap { $0?.mapCount }.max() ?? 0))
        var floatInput = 0
        for (i, stage) in weights.stages.enumerated() where stage.patchEmbedding.quantized == nil && int16Embeddings[i] == nil && i > 0 {
            floatInput = max(floatInput, plan.stageSizes[i - 1].pixels * e.hiddenSizes[i - 1])
        }
        floatMap = FloatBuffer(count: floatInput)
        packedFloatEmbeddings = weights.stages.enumerated().map { i, stage in
            let layer = stage.patchEmbedding
            guard layer.quantized == nil, int16Embeddings[i] == nil else { return nil }
            let channels = i == 0 ? e.numChannels : e.hiddenSizes[i - 1]
            let packed = AlignedBytes(count: ck_conv2d_f32_packed_size(layer.outFeatures, stage.patchSize, channels) * 4)
            ck_conv2d_f32_pack(layer.weight.pointer, layer.outFeatures, stage.patchSize, channels,
                               packed.pointer.assumingMemoryBound(to: Float.self))
            return packed
        }
        columnsQ = AlignedBytes(count: columns)
        tokens = FloatBuffer(count: tokenFloats)
        stageOutputsQ = (0 ..< e.stageCount).map { AlignedBytes(count: plan.stageSizes[$0].pixels * stride(e.hiddenSizes[$0])) }
        normedQ = AlignedBytes(count: normed)
        queryQ = AlignedBytes(count: normed)
        self.attentionInInt8 = attentionInInt8
        queryF = FloatBuffer(count: attentionInInt8 ? 0 : tokenFloats)
        scoreBlocks = attentionInInt8 ? [] : (0 ..< pool.threadCount).map { _ in FloatBuffer(count: plan.scoreCount) }
        attention = Int8Attention(plan: plan, encoder: e, pool: pool, kernels: kernels)
        reduced = FloatBuffer(count: reducedFloats)
        reducedQ = AlignedBytes(count: reducedBytes)
        keys = FloatBuffer(count: reducedFloats)
        values = FloatBuffer(count: reducedFloats)
        attended = FloatBuffer(count: tokenFloats)
        attendedQ = AlignedBytes(count: normed)
        hiddenQ = AlignedBytes(count: hidden)
        activatedQ = AlignedBytes(count: hidden)
        convScratch = (0 ..< pool.threadCount).map { _ in FloatBuffer(count: 2 * maxHidden) }
        projections = (1 ..< e.stageCount).map { FloatBuffer(count: plan.stageSizes[$0].pixels * width) }
        let bandRows = max(1, min(plan.outputSize.height, (1 << 17) / max(1, plan.outputSize.width * width)))
        decoderBandRows = bandRows
        decoderMaps = DecoderMaps(maps: projections, sizes: Array(plan.stageSizes.dropFirst()))
        let blendedRow = plan.stageSizes.dropFirst().map(\.width).reduce(0, +) * width
        decoderRowScratch = (0 ..< pool.threadCount).map { _ in FloatBuffer(count: blendedRow) }
        decoderBands = (0 ..< pool.threadCount).map { _ in FloatBuffer(count: bandRows * plan.outputSize.width * width) }
        fusedQ = AlignedBytes(count: out * stride(width))
        let tasks = d.tasks.count
        taskMaps = tasks > 1 ? (0 ..< tasks).map { _ in FloatBuffer(count: out * width) } : []
        crossMap = FloatBuffer(count: tasks > 1 ? out * width : 0)
        concatQ = AlignedBytes(count: tasks > 1 ? out * stride(2 * width) : 0)
        combinedQ = AlignedBytes(count: tasks > 1 ? out * stride(width) : 0)
        gateSelf = FloatBuffer(count: out)
        gateOther = FloatBuffer(count: out)
        logitsRows = FloatBuffer(count: out * (d.tasks.map(\.classCount).max() ?? 1))
        logits = d.tasks.map { Tensor(shape: [$0.classCount, plan.outputSize.height, plan.outputSize.width],
                                      storage: FloatBuffer(count: $0.classCount * out)) }
    }

    /// Runs the network on a [channels][height][width] normalised image; results are in `logits`.
    public func run(input: UnsafePointer<Float>) {
        stageMilliseconds.removeAll(keepingCapacity: true)
        var clock = DispatchTime.now().uptimeNanoseconds
        func lap(_ name: String) {
            guard profiling else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            stageMilliseconds.append((name, Double(now - clock) / 1e6))
            clock = now
        }
        image = input
        defer { image = nil }
        for i in weights.stages.indices {
            runStage(i)
            lap("stage \(i + 1)")
        }
        decode()
        lap("decoder")
        if let classifier {
            classify(fusedQ.bytes, stride: Self.stride(weights.decoder.width), with: classifier, into: logits[0])
        } else {
            runTaskHeads()
        }
        lap("heads")
    }

    // MARK: Encoder

    private func runStage(_ i: Int) {
        let stage = weights.stages[i], layers = stages[i]
        let out = plan.stageSizes[i]
        let c = stage.channels
        // Overlapping patch embedding: a k×k convolution over gathered patches, then LayerNorm.
        if let embedding = layers.patchEmbedding {
            let inChannels = weights.stages[i - 1].channels, size = plan.stageSizes[i - 1]
            let columnStride = Self.stride(stage.patchSize * stage.patchSize * inChannels)
            let input = activations[QuantPoint.stageOutput(i - 1)]!
            pool.runRanges(count: out.height) { rows in
                // Zero padding is written as the zero point.
                ck_im2col_hwc_u8(stageOutputsQ[i - 1].bytes, Self.stride(inChannels), size.height, size.width, inChannels,
                                 stage.patchSize, stage.stride, stage.patchSize / 2, out.height, out.width,
                                 UInt8(input.zeroPoint), columnsQ.bytes, columnStride,
                                 rows.lowerBound, rows.count)
            }
            gemm(embedding, rows: out.pixels, a: columnsQ.bytes, lda: columnStride, into: tokens.pointer, ldc: c, output: CK_QGEMM_OUT_F32)
        } else {
            embedFloat(i)
        }
        pool.runRanges(count: out.pixels) { rows in
            ck_layer_norm_f32(tokens.pointer + rows.lowerBound * c, tokens.pointer + rows.lowerBound * c, rows.count, c,
                              stage.patchNorm.gamma.pointer, stage.patchNorm.beta.pointer, eps)
        }
        for (j, block) in stage.blocks.enumerated() {
            runBlock(block, layers.blocks[j], stage: stage, index: i, block: j)
        }
        let output = activations[QuantPoint.stageOutput(i)]!
        let ld = Self.stride(c)
        // The stage's output: u8 for the decoder and an int8 next embedding; also fp32 when the next embedding is not
        // int8: in floatMap for an fp32 one, in place for a 16-bit one (which quantizes it before writing `tokens`).
        let nextIsFloat = i + 1 < stages.count && stages[i + 1].patchEmbedding == nil
        let normed = i + 1 < stages.count && int16Embeddings[i + 1] != nil ? tokens.pointer : floatMap.pointer
        pool.runRanges(count: out.pixels) { rows in
            let offset = rows.lowerBound * c
            if nextIsFloat {
                ck_layer_norm_f32(tokens.pointer + offset, normed + offset, rows.count, c, stage.norm.gamma.pointer,
                                  stage.norm.beta.pointer, eps)
                ck_quantize_rows_u8(normed + offset, c, stageOutputsQ[i].bytes + rows.lowerBound * ld, ld, rows.count, c,
                                    output.inverseScale, output.zeroPoint)
            } else {
                ck_layer_norm_quantize_u8(tokens.pointer + offset, stageOutputsQ[i].bytes + rows.lowerBound * ld, ld,
                                          rows.count, c, stage.norm.gamma.pointer, stage.norm.beta.pointer, eps,
                                          output.inverseScale, output.zeroPoint)
            }
        }
    }

    /// A patch embedding outside int8 on the image or the previous stage's output: 16-bit where available (the
    /// output in `tokens`, the input there too), else fp32 on `floatMap`, in bands of output rows.
    private func embedFloat(_ i: Int) {
        let stage = weights.stages[i], out = plan.stageSizes[i]
        let input = i == 0 ? plan.input : plan.stageSizes[i - 1]
        let channels = i == 0 ? weights.description.encoder.numChannels : weights.stages[i - 1].channels
        if let embedding = int16Embeddings[i] {
            // The image is channels-first; a previous stage's output is channels-last.
            embedding.run(source: i == 0 ? image! : UnsafePointer(tokens.pointer), rowStride: i == 0 ? input.width : input.width * channels,
                          pixelStride: i == 0 ? 1 : channels, channelStride: i == 0 ? input.pixels : 1,
                          map: int16Map.pointer.assumingMemoryBound(to: Int16.self), into: tokens.pointer, pool: pool)
            return
        }
        let layer = stage.patchEmbedding
        let packed = UnsafePointer(packedFloatEmbeddings[i]!.pointer.assumingMemoryBound(to: Float.self))
        // The image is channels-first; a previous stage's output in floatMap is channels-last.
        let source = i == 0 ? image! : UnsafePointer(floatMap.pointer)
        let rowStride = i == 0 ? input.width : input.width * channels
        let pixelStride = i == 0 ? 1 : channels, channelStride = i == 0 ? input.pixels : 1
        pool.runRanges(count: out.height) { rows in
            ck_conv2d_f32(source, input.height, input.width, channels, rowStride, pixelStride, channelStride, packed,
                          layer.outFeatures, stage.patchSize, stage.stride, stage.patchSize / 2, layer.bias?.pointer,
                          tokens.pointer, out.height, out.width, rows.lowerBound, rows.count)
        }
    }

    private func runBlock(_ block: BlockWeights, _ layers: BlockLayers, stage: StageWeights, index i: Int, block j: Int) {
        let size = plan.stageSizes[i]
        let n = size.pixels, c = stage.channels, ld = Self.stride(c)
        // h = h + Attention(LN1(h))
        let norm1 = activations[QuantPoint.norm1(i, j)]!
        layerNormQuantized(rows: n, channels: c, block.norm1, into: normedQ, params: norm1)
        selfAttention(block, layers, stage: stage, index: i, block: j)
        gemm(layers.output, rows: n, a: attendedQ.bytes, lda: ld, into: tokens.pointer, ldc: c, output: CK_QGEMM_OUT_F32_ACCUMULATE)
        // h = h + MixFFN(LN2(h)): dense1 → depthwise 3×3 → GELU → dense2, u8 between them.
        let norm2 = activations[QuantPoint.norm2(i, j)]!
        layerNormQuantized(rows: n, channels: c, block.norm2, into: normedQ, params: norm2)
        let hidden = block.dense1.outFeatures, hiddenLd = Self.stride(hidden)
        let hiddenParams = activations[QuantPoint.hidden(i, j)]!, activated = activations[QuantPoint.activation(i, j)]!
        gemm(layers.dense1, rows: n, a: normedQ.bytes, lda: ld, into: hiddenQ.bytes, ldc: hiddenLd, output: CK_QGEMM_OUT_U8,
             outputParams: hiddenParams)
        pool.runSlots(count: size.height) { rows, slot in
            ck_dwconv3x3_gelu_u8(hiddenQ.bytes, hiddenLd, activatedQ.bytes, hiddenLd, size.height, size.width, hidden,
                                 block.depthwiseWeight.pointer, block.depthwiseBias.pointer, hiddenParams.scale, hiddenParams.zeroPoint,
                                 activated.inverseScale, activated.zeroPoint, rows.lowerBound, rows.count, convScratch[slot].pointer)
        }
        gemm(layers.dense2, rows: n, a: activatedQ.bytes, lda: hiddenLd, into: tokens.pointer, ldc: c,
             output: CK_QGEMM_OUT_F32_ACCUMULATE)
    }

    /// Efficient self-attention of the quantized LN1 output into `attendedQ` (u8, the output projection's input).
    private func selfAttention(_ block: BlockWeights, _ layers: BlockLayers, stage: StageWeights, index i: Int, block j: Int) {
        let size = plan.stageSizes[i], kvSize = plan.reducedSizes[i]
        let n = size.pixels, m = kvSize.pixels, c = stage.channels, ld = Self.stride(c)
        let queryParams = activations[QuantPoint.query(i, j)]!
        if attentionInInt8 {
            gemm(layers.query, rows: n, a: normedQ.bytes, lda: ld, into: queryQ.bytes, ldc: ld, output: CK_QGEMM_OUT_U8, outputParams: queryParams)
        } else {
            gemm(layers.query, rows: n, a: normedQ.bytes, lda: ld, into: queryF.pointer, ldc: c, output: CK_QGEMM_OUT_F32)
        }
        var kvInput = UnsafePointer(normedQ.bytes)
        if let reduction = layers.reduction, let norm = block.reductionNorm {
            let sr = stage.srRatio, columnStride = Self.stride(sr * sr * c)
            let norm1 = activations[QuantPoint.norm1(i, j)]!
            pool.runRanges(count: kvSize.height) { rows in
                ck_im2col_hwc_u8(normedQ.bytes, ld, size.height, size.width, c, sr, sr, 0, kvSize.height, kvSize.width,
                                 UInt8(norm1.zeroPoint), columnsQ.bytes, columnStride, rows.lowerBound, rows.count)
            }
            gemm(reduction, rows: m, a: columnsQ.bytes, lda: columnStride, into: reduced.pointer, ldc: c, output: CK_QGEMM_OUT_F32)
            let kv = activations[QuantPoint.keyValueInput(i, j)]!
            ck_layer_norm_quantize_u8(reduced.pointer, reducedQ.bytes, ld, m, c, norm.gamma.pointer, norm.beta.pointer, eps,
                                      kv.inverseScale, kv.zeroPoint)
            kvInput = UnsafePointer(reducedQ.bytes)
        }
        gemm(layers.key, rows: m, a: kvInput, lda: ld, into: keys.pointer, ldc: c, output: CK_QGEMM_OUT_F32)
        gemm(layers.value, rows: m, a: kvInput, lda: ld, into: values.pointer, ldc: c, output: CK_QGEMM_OUT_F32)
        let output = activations[QuantPoint.attention(i, j)]!
        if attentionInInt8 {
            attention.run(queries: queryQ.bytes, queryParams: queryParams, keys: keys.pointer, values: values.pointer, rows: n,
                          keyCount: m, channels: c, heads: stage.heads, rowBlock: plan.attentionRowBlocks[i], scratch: attended.pointer,
                          outputParams: output, into: attendedQ.bytes)
        } else {
            floatAttention(rows: n, keyCount: m, channels: c, heads: stage.heads, rowBlock: plan.attentionRowBlocks[i], output: output)
        }
    }

    /// softmax(q·kᵀ/√d)·v per head in fp32 (BLAS), the result quantized for the output projection.
    private func floatAttention(rows n: Int, keyCount m: Int, channels c: Int, heads: Int, rowBlock: Int, output: QuantParams) {
        let d = c / heads, scale = 1 / Float(d).squareRoot(), ld = Self.stride(c)
        let blocks = (n + rowBlock - 1) / rowBlock
        pool.runSlots(count: blocks) { range, slot in
            let scores = scoreBlocks[slot].pointer
            for block in range {
                let row = block * rowBlock, count = min(rowBlock, n - row)
                for head in 0 ..< heads {
                    let offset = head * d
                    BLAS.linear(queryF.pointer + row * c + offset, rows: count, inner: d, lda: c, weight: keys.pointer + offset, outputs: m,
                                ldw: c, into: scores, ldc: m)
                    ck_softmax_rows_f32(scores, count, m, scale)
                    BLAS.multiply(scores, rows: count, inner: m, lda: m, values.pointer + offset, columns: d, ldb: c,
                                  into: attended.pointer + row * c + offset, ldc: c)
                }
                ck_quantize_rows_u8(attended.pointer + row * c, c, attendedQ.bytes + row * ld, ld, count, c, output.inverseScale, output.zeroPoint)
            }
        }
    }

    // MARK: Decoder and heads

    /// F = ReLU(Σ_i upsample(stage_i · W'_iᵀ) + b'), the folded all-MLP decoder,
    /// written as u8. The deeper stages' projections are made whole at their own
    /// (small) resolutions; the full-resolution sum is only ever a band of rows.
    private func decode() {
        let out = plan.outputSize, d = weights.decoder.width, ld = Self.stride(d)
        for i in 1 ..< decoderLayers.count {
            gemm(decoderLayers[i], rows: plan.stageSizes[i].pixels, a: stageOutputsQ[i].bytes, lda: Self.stride(weights.stages[i].channels),
                 into: projections[i - 1].pointer, ldc: d, output: CK_QGEMM_OUT_F32)
        }
        let fusedParams = activations[QuantPoint.fused]!
        let bands = (out.height + decoderBandRows - 1) / decoderBandRows
        pool.runSlots(count: bands) { range, slot in
            for band in range {
                let first = band * decoderBandRows, rows = min(decoderBandRows, out.height - first)
                let pixels = first * out.width ..< (first + rows) * out.width
                // The band buffer stands for rows first..<first+rows of the full map.
                let map = decoderBands[slot].pointer - pixels.lowerBound * d
                decoderLayers[0].run(rows: pixels, a: stageOutputsQ[0].bytes, lda: Self.stride(weights.stages[0].channels),
                                     into: UnsafeMutableRawPointer(map), ldc: d, output: CK_QGEMM_OUT_F32)
                ck_decoder_sum_quantize_u8(map + pixels.lowerBound * d, decoderMaps.count, decoderMaps.pointers, decoderMaps.heights,
                                           decoderMaps.widths, d, out.height, out.width, first, rows, weights.decoder.bias.pointer,
                                           fusedParams.inverseScale, fusedParams.zeroPoint, fusedQ.bytes, ld,
                                           decoderRowScratch[slot].pointer)
            }
        }
    }

    /// ARCHITECTURE §3.2 in int8: task maps, fp32 gates and cross-task maps, combine, classifier.
    private func runTaskHeads() {
        let n = plan.outputSize.pixels, d = weights.decoder.width, ld = Self.stride(d), concatLd = Self.stride(2 * d)
        for (t, layers) in heads.enumerated() {
            gemm(layers.taskMap, rows: n, a: fusedQ.bytes, lda: ld, into: taskMaps[t].pointer, ldc: d, output: CK_QGEMM_OUT_F32, relu: true)
        }
        for (t, head) in weights.heads.enumerated() {
            crossMap.pointer.update(repeating: 0, count: n * d)
            for gate in head.gates {
                BLAS.linear(taskMaps[t].pointer, rows: n, inner: d, weight: gate.selfWeight.pointer, outputs: 1, into: gateSelf.pointer)
                BLAS.linear(taskMaps[gate.otherTask].pointer, rows: n, inner: d, weight: gate.otherWeight.pointer, outputs: 1,
                            into: gateOther.pointer)
                ck_gate_accumulate_f32(gateSelf.pointer, gateOther.pointer, gate.bias, taskMaps[gate.otherTask].pointer, crossMap.pointer, n, d)
            }
            let concat = activations[QuantPoint.taskConcat(t)]!, combined = activations[QuantPoint.taskCombined(t)]!
            ck_quantize_rows_u8(taskMaps[t].pointer, d, concatQ.bytes, concatLd, n, d, concat.inverseScale, concat.zeroPoint)
            ck_quantize_rows_u8(crossMap.pointer, d, concatQ.bytes + d, concatLd, n, d, concat.inverseScale, concat.zeroPoint)
            gemm(heads[t].combine, rows: n, a: concatQ.bytes, lda: concatLd, into: combinedQ.bytes, ldc: ld, output: CK_QGEMM_OUT_U8,
                 relu: true, outputParams: combined)
            classify(combinedQ.bytes, stride: ld, with: heads[t].classifier, into: logits[t])
        }
    }

    private func classify(_ features: UnsafeMutablePointer<UInt8>, stride: Int, with layer: Int8Layer, into output: Tensor) {
        let out = plan.outputSize
        gemm(layer, rows: out.pixels, a: features, lda: stride, into: logitsRows.pointer, ldc: layer.outFeatures, output: CK_QGEMM_OUT_F32)
        ck_hwc_to_chw_f32(logitsRows.pointer, output.pointer, out.height, out.width, layer.outFeatures)
    }

    // MARK: Helpers

    private var eps: Float { weights.description.layerNormEps }

    /// An int8 product split over the pool by rows (in whole tiles).
    private func gemm(_ layer: Int8Layer, rows: Int, a: UnsafePointer<UInt8>, lda: Int, into c: UnsafeMutableRawPointer, ldc: Int,
                      output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil) {
        pool.runRanges(count: rows, alignment: 16) { range in
            layer.run(rows: range, a: a, lda: lda, into: c, ldc: ldc, output: output, relu: relu, outputParams: outputParams)
        }
    }

    private func gemm(_ layer: Int8Layer, rows: Int, a: UnsafeMutablePointer<UInt8>, lda: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
                      output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil) {
        gemm(layer, rows: rows, a: UnsafePointer(a), lda: lda, into: UnsafeMutableRawPointer(c), ldc: ldc, output: output, relu: relu,
             outputParams: outputParams)
    }

    private func gemm(_ layer: Int8Layer, rows: Int, a: UnsafeMutablePointer<UInt8>, lda: Int, into c: UnsafeMutablePointer<UInt8>, ldc: Int,
                      output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil) {
        gemm(layer, rows: rows, a: UnsafePointer(a), lda: lda, into: UnsafeMutableRawPointer(c), ldc: ldc, output: output, relu: relu,
             outputParams: outputParams)
    }

    private func gemm(_ layer: Int8Layer, rows: Int, a: UnsafePointer<UInt8>, lda: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
                      output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil) {
        gemm(layer, rows: rows, a: a, lda: lda, into: UnsafeMutableRawPointer(c), ldc: ldc, output: output, relu: relu,
             outputParams: outputParams)
    }

    private func layerNormQuantized(rows n: Int, channels c: Int, _ norm: LayerNormWeights, into out: AlignedBytes, params: QuantParams) {
        let ld = Self.stride(c)
        pool.runRanges(count: n) { rows in
            ck_layer_norm_quantize_u8(tokens.pointer + rows.lowerBound * c, out.bytes + rows.lowerBound * ld, ld, rows.count, c,
                                      norm.gamma.pointer, norm.beta.pointer, eps, params.inverseScale, params.zeroPoint)
        }
    }
}

/// Pointers to the decoder's low-resolution projections and their sizes, in C arrays made once.
private final class DecoderMaps {
    let count: Int
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>?>
    let heights: UnsafeMutablePointer<Int>
    let widths: UnsafeMutablePointer<Int>

    init(maps: [FloatBuffer], sizes: [MapSize]) {
        precondition(maps.count <= Int(CK_DECODER_MAPS_MAX), "at most \(CK_DECODER_MAPS_MAX) encoder stages after the first")
        count = maps.count
        pointers = .allocate(capacity: max(1, count))
        heights = .allocate(capacity: max(1, count))
        widths = .allocate(capacity: max(1, count))
        for i in 0 ..< count {
            pointers[i] = UnsafePointer(maps[i].pointer)
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
