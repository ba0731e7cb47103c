import CKernels

/// The int8 engine's activation memory: the size of every region, from the forward plan and the
/// choices made at load (kernel set, threads, attention's precision, how the embeddings outside
/// int8 run), and the regions themselves, cut from one zeroed arena. u8 maps have rows of
/// `ForwardPlan.byteRowStride(C)` bytes so the kernels can read whole k-groups.
struct Int8Buffers {
    /// Element counts of the regions: each the largest any stage needs.
    struct Sizes {
        var columnBytes = 0, tokenFloats = 0, rowBytes = 0, reducedFloats = 0, reducedBytes = 0, hiddenBytes = 0
        /// Channels of the widest Mix-FFN hidden layer.
        var hiddenChannels = 0
        var floatMapFloats = 0, int16MapCount = 0
        var stageOutputBytes: [Int] = []
        var projectionFloats: [Int] = []
        var decoderBandRows = 0, decoderBandFloats = 0, decoderRowFloats = 0
        var fusedBytes = 0, taskMapFloats = 0, concatBytes = 0, combinedBytes = 0, gateFloats = 0, logitsRowFloats = 0
        var taskCount = 0
        /// Fused heads: per thread, the maps of one band of pixels (`Int8Heads.Band`), and no full-resolution map
        /// after `fused`.
        var fusedHeads = true
        var bandTaskFloats = 0, bandGateFloats = 0, bandConcatBytes = 0, bandCombinedBytes = 0, bandLogitsFloats = 0
        var threads = 1
        var attentionInInt8 = true
        var scoreFloats = 0
        // Int8Attention's.
        var keyBytes = 0, valueBytes = 0, maxKeys = 1, maxHeadDim = 1, maxHeads = 1, packedKeyBytes = 0, packedValueBytes = 0
        var exponentialBytes = 0, inverseSumFloats = 0
        /// Per thread: the scratch of the layers that run in fp32 (`Int8Layer.scratchCount`).
        var layerScratchFloats = 0

        /// `floatEmbeddingStages`: the stages whose patch embedding runs in fp32 on `floatMap` (not in int8, not in
        /// 16 bits); `int16MapCount`: int16 elements of the largest 16-bit embedding's input map.
        init(plan: ForwardPlan, description d: ModelDescription, kernels: ck_qgemm_kernels, threads: Int, attentionInInt8: Bool,
             floatEmbeddingStages: [Int], int16MapCount: Int, layerScratchFloats: Int, fusedHeads: Bool = true) {
            let stride = ForwardPlan.byteRowStride
            for (i, s) in plan.stages.enumerated() {
                let n = s.tokens.pixels, m = s.reduced.pixels, c = s.channels, k = s.patchSize, sr = s.srRatio
                // (The first stage's embedding, on the image, never gathers u8 patches.)
                columnBytes = max(columnBytes, i == 0 ? 0 : n * stride(k * k * s.inChannels), m * stride(sr * sr * c))
                tokenFloats = max(tokenFloats, n * c)
                rowBytes = max(rowBytes, n * stride(c))
                reducedFloats = max(reducedFloats, m * c)
                reducedBytes = max(reducedBytes, m * stride(c))
                hiddenBytes = max(hiddenBytes, n * stride(s.hiddenChannels))
                hiddenChannels = max(hiddenChannels, s.hiddenChannels)
                stageOutputBytes.append(n * stride(c))
                keyBytes = max(keyBytes, m * stride(c))
                valueBytes = max(valueBytes, c * stride(m))
                maxKeys = max(maxKeys, m)
                maxHeadDim = max(maxHeadDim, s.headDim)
                maxHeads = max(maxHeads, s.heads)
                packedKeyBytes = max(packedKeyBytes, kernels.packed_size(m, s.headDim))
                packedValueBytes = max(packedValueBytes, kernels.packed_size(s.headDim, m))
            }
            for i in floatEmbeddingStages where i > 0 {
                floatMapFloats = max(floatMapFloats, plan.stages[i].inChannels * plan.stages[i - 1].tokens.pixels)
            }
            self.int16MapCount = int16MapCount
            self.layerScratchFloats = layerScratchFloats
            let out = plan.outputSize, width = d.decoderHiddenSize
            projectionFloats = plan.stageSizes.dropFirst().map { $0.pixels * width }
            // A band of the full-resolution decoder sum stays within 512 KiB.
            decoderBandRows = max(1, min(out.height, (1 << 17) / max(1, out.width * width)))
            decoderBandFloats = decoderBandRows * out.width * width
            decoderRowFloats = plan.stageSizes.dropFirst().map(\.width).reduce(0, +) * width
            fusedBytes = out.pixels * stride(width)
            taskCount = d.tasks.count
            let maxClasses = d.tasks.map(\.classCount).max() ?? 1
            self.fusedHeads = fusedHeads
            if fusedHeads {
                let band = Int8Heads.bandPixels, multi = taskCount > 1
                bandTaskFloats = multi ? band * taskCount * width : 0
                bandGateFloats = multi ? CrossTaskGates.scratchCount(tasks: taskCount) : 0
                bandConcatBytes = multi ? band * stride(2 * width) : 0
                bandCombinedBytes = multi ? band * stride(width) : 0
                bandLogitsFloats = band * maxClasses
            } else {
                taskMapFloats = taskCount > 1 ? out.pixels * width : 0
                concatBytes = taskCount > 1 ? out.pixels * stride(2 * width) : 0
                combinedBytes = taskCount > 1 ? out.pixels * stride(width) : 0
                gateFloats = taskCount > 1 ? CrossTaskGates.scratchCount(tasks: taskCount) : 0
                logitsRowFloats = out.pixels * maxClasses
            }
            self.threads = threads
            self.attentionInInt8 = attentionInInt8
            scoreFloats = plan.scoreCount
            let rowBlock = plan.attentionRowBlocks.max() ?? 1
            exponentialBytes = rowBlock * stride(maxKeys)
            inverseSumFloats = rowBlock * maxHeads
        }

        /// Bytes of the arena the regions below are cut from (each rounded up to 64 bytes, as the arena does).
        var arenaBytes: Int {
            func bytes(_ count: Int, _ size: Int) -> Int { (count * size + 63) / 64 * 64 }
            let f = MemoryLayout<Float>.stride, i32 = MemoryLayout<Int32>.stride
            var total = bytes(floatMapFloats, f) + bytes(int16MapCount, 2) + bytes(columnBytes, 1) + bytes(tokenFloats, f)
            total += stageOutputBytes.map { bytes($0, 1) }.reduce(0, +)
            total += 2 * bytes(rowBytes, 1) // normed, queries
            total += bytes(attentionInInt8 ? 0 : tokenFloats, f) + (attentionInInt8 ? 0 : threads * bytes(scoreFloats, f))
            total += bytes(reducedFloats, f) + bytes(reducedBytes, 1) + 2 * bytes(reducedFloats, f) // reduced, keys, values
            total += bytes(tokenFloats, f) + bytes(rowBytes, 1) + 2 * bytes(hiddenBytes, 1) // attended, hidden, activated
            total += threads * (bytes(2 * hiddenChannels, f) + bytes(layerScratchFloats, f))
            total += projectionFloats.map { bytes($0, f) }.reduce(0, +)
            total += threads * (bytes(decoderBandFloats, f) + bytes(decoderRowFloats, f))
            total += bytes(fusedBytes, 1) + (taskCount > 1 ? taskCount : 0) * bytes(taskMapFloats, f)
            total += bytes(concatBytes, 1) + bytes(combinedBytes, 1) + bytes(gateFloats, f) + bytes(logitsRowFloats, f)
            total += threads * (bytes(bandTaskFloats, f) + bytes(bandGateFloats, f) + bytes(bandConcatBytes, 1)
                                + bytes(bandCombinedBytes, 1) + bytes(bandLogitsFloats, f))
            // Int8Attention's
            total += bytes(keyBytes, 1) + bytes(valueBytes, 1) + maxHeads * (bytes(packedKeyBytes, 1) + bytes(packedValueBytes, 1))
            total += maxHeads * (bytes(maxKeys, i32) + bytes(maxHeadDim, i32)) + bytes(maxKeys, f) + bytes(maxHeadDim, f)
            total += threads * (bytes(scoreFloats, f) + bytes(exponentialBytes, 1) + bytes(inverseSumFloats, f))
            return total
        }
    }

    typealias Floats = UnsafeMutablePointer<Float>
    typealias Bytes = UnsafeMutablePointer<UInt8>

    /// The fp32 input of a patch embedding that runs in fp32: the previous stage's output.
    let floatMap: Floats
    /// The bordered int16 input map of the 16-bit embeddings (one at a time).
    let int16Map: UnsafeMutablePointer<Int16>
    /// Gathered patches of an int8 patch embedding or spatial reduction.
    let columns: Bytes
    /// The residual stream h of the current stage, [pixels][C].
    let tokens: Floats
    /// Per stage, its output quantized: the decoder's input, and the next int8 embedding's.
    let stageOutputs: [Bytes]
    let normed: Bytes
    let queries: Bytes
    /// fp32 attention only: queries, and one score block per thread.
    let floatQueries: Floats
    let scoreBlocks: [Floats]
    let reduced: Floats
    let reducedQ: Bytes
    let keys: Floats
    let values: Floats
    let attended: Floats
    let attendedQ: Bytes
    let hidden: Bytes
    let activated: Bytes
    /// Per thread, the depthwise convolution's scratch, and that of the layers that run in fp32.
    let convScratch: [Floats]
    let layerScratch: [Floats]
    /// The decoder's projections of stages 2…, and per thread a band of rows of the full-resolution sum and
    /// one output row's worth of each projection blended vertically.
    let projections: [Floats]
    let decoderBandRows: Int
    let decoderBands: [Floats]
    let decoderRows: [Floats]
    let fused: Bytes
    let taskMaps: [Floats]
    let concat: Bytes
    let combined: Bytes
    /// The gates' scratch (`CrossTaskGates.scratchCount`).
    let gateScratch: Floats
    let logitsRows: Floats
    /// Fused heads: per thread, one band's maps.
    let headBands: [Int8Heads.Band]
    let attention: Int8Attention.Buffers

    init(_ s: Sizes, arena: ActivationArena) {
        func floats(_ count: Int) -> Floats { arena.take(Float.self, count: count) }
        func bytes(_ count: Int) -> Bytes { arena.take(UInt8.self, count: count) }
        let perThread = 0 ..< s.threads
        floatMap = floats(s.floatMapFloats)
        int16Map = arena.take(Int16.self, count: s.int16MapCount)
        columns = bytes(s.columnBytes)
        tokens = floats(s.tokenFloats)
        stageOutputs = s.stageOutputBytes.map { bytes($0) }
        normed = bytes(s.rowBytes)
        queries = bytes(s.rowBytes)
        floatQueries = floats(s.attentionInInt8 ? 0 : s.tokenFloats)
        scoreBlocks = s.attentionInInt8 ? [] : perThread.map { _ in floats(s.scoreFloats) }
        reduced = floats(s.reducedFloats)
        reducedQ = bytes(s.reducedBytes)
        keys = floats(s.reducedFloats)
        values = floats(s.reducedFloats)
        attended = floats(s.tokenFloats)
        attendedQ = bytes(s.rowBytes)
        hidden = bytes(s.hiddenBytes)
        activated = bytes(s.hiddenBytes)
        convScratch = perThread.map { _ in floats(2 * s.hiddenChannels) }
        layerScratch = perThread.map { _ in floats(s.layerScratchFloats) }
        projections = s.projectionFloats.map { floats($0) }
        decoderBandRows = s.decoderBandRows
        decoderBands = perThread.map { _ in floats(s.decoderBandFloats) }
        decoderRows = perThread.map { _ in floats(s.decoderRowFloats) }
        fused = bytes(s.fusedBytes)
        taskMaps = (0 ..< (s.taskCount > 1 ? s.taskCount : 0)).map { _ in floats(s.taskMapFloats) }
        concat = bytes(s.concatBytes)
        combined = bytes(s.combinedBytes)
        gateScratch = floats(s.gateFloats)
        logitsRows = floats(s.logitsRowFloats)
        headBands = (s.fusedHeads ? perThread : 0 ..< 0).map { _ in
            Int8Heads.Band(taskMaps: floats(s.bandTaskFloats), gateScratch: floats(s.bandGateFloats), concat: bytes(s.bandConcatBytes),
                           combined: bytes(s.bandCombinedBytes), logits: floats(s.bandLogitsFloats))
        }
        attention = Int8Attention.Buffers(
            keys: arena.take(Int8.self, count: s.keyBytes), valuesTransposed: arena.take(Int8.self, count: s.valueBytes),
            packedKeys: (0 ..< s.maxHeads).map { _ in UnsafeMutableRawPointer(bytes(s.packedKeyBytes)) },
            packedValues: (0 ..< s.maxHeads).map { _ in UnsafeMutableRawPointer(bytes(s.packedValueBytes)) },
            keyOffsets: (0 ..< s.maxHeads).map { _ in arena.take(Int32.self, count: s.maxKeys) },
            valueOffsets: (0 ..< s.maxHeads).map { _ in arena.take(Int32.self, count: s.maxHeadDim) },
            keyScale: floats(s.maxKeys), valueScale: floats(s.maxHeadDim),
            scores: perThread.map { _ in floats(s.scoreFloats) },
            exponentials: perThread.map { _ in bytes(s.exponentialBytes) },
            inverseSums: perThread.map { _ in floats(s.inverseSumFloats) })
    }
}
