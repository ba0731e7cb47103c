import CKernels

/// Multi-head efficient self-attention with both matrix products in int8.
///
/// Queries arrive as u8 (the query projection writes them with a calibrated
/// grid). Keys and values are quantized per frame, symmetric s8 with one scale
/// each, and packed per head as the "weights" of the products:
///   S = Q_h·K_hᵀ·(s_q·s_k/√d)  →  E = round(255·exp(S − max))  (u8, unnormalised)
///   O_h = E·V_h·s_v / Σ E
/// Dividing by Σ E after the product touches d values per row instead of the
/// row's N' scores.
final class Int8Attention {
    private let kernels: UnsafePointer<ck_qgemm_kernels>
    private let pool: ThreadPool
    private let keysQ: AlignedBytes
    private let valuesQT: AlignedBytes
    private let packedKeys: [AlignedBytes]
    private let packedValues: [AlignedBytes]
    private let keyOffsets: [UnsafeMutablePointer<Int32>]
    private let valueOffsets: [UnsafeMutablePointer<Int32>]
    private let keyScale: UnsafeMutablePointer<Float>
    private let valueScale: UnsafeMutablePointer<Float>
    private let scores: [FloatBuffer]
    private let exponentials: [AlignedBytes]
    private let inverseSums: [FloatBuffer]
    private let maxKeys: Int
    private let maxHeadDim: Int

    /// Sized for the largest stage of `plan`.
    init(plan: ForwardPlan, encoder e: EncoderConfig, pool: ThreadPool, kernels: UnsafePointer<ck_qgemm_kernels>) {
        self.kernels = kernels
        self.pool = pool
        var keyBytes = 0, valueBytes = 0, maxKeys = 1, maxHeadDim = 1, maxHeads = 1, packedK = 0, packedV = 0
        for i in 0 ..< e.stageCount {
            let m = plan.reducedSizes[i].pixels, c = e.hiddenSizes[i], d = c / e.numAttentionHeads[i]
            keyBytes = max(keyBytes, m * Int8Engine.stride(c))
            valueBytes = max(valueBytes, c * Int8Engine.stride(m))
            maxKeys = max(maxKeys, m)
            maxHeadDim = max(maxHeadDim, d)
            maxHeads = max(maxHeads, e.numAttentionHeads[i])
            packedK = max(packedK, kernels.pointee.packed_size(m, d))
            packedV = max(packedV, kernels.pointee.packed_size(d, m))
        }
        self.maxKeys = maxKeys
        self.maxHeadDim = maxHeadDim
        keysQ = AlignedBytes(count: keyBytes)
        valuesQT = AlignedBytes(count: valueBytes)
        packedKeys = (0 ..< maxHeads).map { _ in AlignedBytes(count: packedK) }
        packedValues = (0 ..< maxHeads).map { _ in AlignedBytes(count: packedV) }
        keyOffsets = (0 ..< maxHeads).map { _ in .allocate(capacity: maxKeys) }
        valueOffsets = (0 ..< maxHeads).map { _ in .allocate(capacity: maxHeadDim) }
        keyScale = .allocate(capacity: maxKeys)
        valueScale = .allocate(capacity: maxHeadDim)
        let rowBlock = plan.attentionRowBlocks.max() ?? 1
        scores = (0 ..< pool.threadCount).map { _ in FloatBuffer(count: plan.scoreCount) }
        exponentials = (0 ..< pool.threadCount).map { _ in AlignedBytes(count: rowBlock * Int8Engine.stride(maxKeys)) }
        inverseSums = (0 ..< pool.threadCount).map { _ in FloatBuffer(count: rowBlock * maxHeads) }
    }

    deinit {
        keyOffsets.forEach { $0.deallocate() }
        valueOffsets.forEach { $0.deallocate() }
        keyScale.deallocate()
        valueScale.deallocate()
    }

    /// The attention output [n][stride(c)] quantized with `outputParams` (the input of the output projection), from u8
    /// queries [n][stride(c)] and fp32 keys and values [m][c]; `attended` [n][c] is fp32 scratch. Each block of rows
    /// runs all heads and is quantized while it is still in cache.
    func run(queries: UnsafePointer<UInt8>, queryParams: QuantParams, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
             rows n: Int, keyCount m: Int, channels c: Int, heads: Int, rowBlock: Int, scratch attended: UnsafeMutablePointer<Float>,
             outputParams: QuantParams, into attendedQ: UnsafeMutablePointer<UInt8>) {
        let set = kernels.pointee
        let d = c / heads
        let ldq = Int8Engine.stride(c), ldk = Int8Engine.stride(c), ldv = Int8Engine.stride(m), lde = Int8Engine.stride(m)
        let keyScaleValue = ck_quantize_symmetric_s8(keys, c, m, c, keysQ.pointer.assumingMemoryBound(to: Int8.self), ldk, 0)
        let valueScaleValue = ck_quantize_symmetric_s8(values, c, m, c, valuesQT.pointer.assumingMemoryBound(to: Int8.self), ldv, 1)
        let scoreScale = queryParams.scale * keyScaleValue / Float(d).squareRoot()
        keyScale.update(repeating: scoreScale, count: m)
        valueScale.update(repeating: valueScaleValue, count: d)
        // Per head: pack K_h (m keys × d) and V_hᵀ (d × m keys), and their zero-point offsets.
        let keyBase = UnsafePointer(keysQ.pointer.assumingMemoryBound(to: Int8.self))
        let valueBase = UnsafePointer(valuesQT.pointer.assumingMemoryBound(to: Int8.self))
        for h in 0 ..< heads {
            set.pack(keyBase + h * d, m, d, ldk, packedKeys[h].pointer)
            ck_row_sums_s8(keyBase + h * d, m, d, ldk, queryParams.zeroPoint - set.a_shift, keyOffsets[h])
            set.pack(valueBase + h * d * ldv, d, m, ldv, packedValues[h].pointer)
            ck_row_sums_s8(valueBase + h * d * ldv, d, m, ldv, -set.a_shift, valueOffsets[h])
        }
        let blocks = (n + rowBlock - 1) / rowBlock
        pool.runSlots(count: blocks) { range, thread in
            let score = scores[thread].pointer, e = exponentials[thread].bytes, inverse = inverseSums[thread].pointer
            for block in range {
              let row = block * rowBlock, rows = min(rowBlock, n - row)
              for h in 0 ..< heads {
                var scoreEpilogue = ck_qgemm_epilogue(offset: keyOffsets[h], scale: keyScale, bias: nil, relu: 0,
                                                      output: CK_QGEMM_OUT_F32, out_scale_inv: 1, out_zero_point: 0)
                set.gemm(rows, m, d, queries + row * ldq + h * d, ldq, packedKeys[h].pointer, &scoreEpilogue, score, m)
                ck_softmax_exp_u8(score, m, rows, m, e, lde, inverse + h * rows)
                var valueEpilogue = ck_qgemm_epilogue(offset: valueOffsets[h], scale: valueScale, bias: nil, relu: 0,
                                                      output: CK_QGEMM_OUT_F32, out_scale_inv: 1, out_zero_point: 0)
                let out = attended + row * c + h * d
                set.gemm(rows, d, m, e, lde, packedValues[h].pointer, &valueEpilogue, out, c)
              }
              ck_scale_heads_quantize_u8(attended + row * c, c, rows, heads, d, inverse, attendedQ + row * ldq, ldq,
                                         outputParams.inverseScale, outputParams.zeroPoint)
            }
        }
    }
}
