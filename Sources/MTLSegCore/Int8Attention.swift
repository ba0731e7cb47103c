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
    /// Its memory, regions of the engine's arena (sized by `Int8Buffers.Sizes` for the largest stage).
    struct Buffers {
        let keys: UnsafeMutablePointer<Int8>
        let valuesTransposed: UnsafeMutablePointer<Int8>
        /// Per head, K_h and V_hᵀ packed as the products' "weights", and their zero-point offsets.
        let packedKeys: [UnsafeMutableRawPointer]
        let packedValues: [UnsafeMutableRawPointer]
        let keyOffsets: [UnsafeMutablePointer<Int32>]
        let valueOffsets: [UnsafeMutablePointer<Int32>]
        let keyScale: UnsafeMutablePointer<Float>
        let valueScale: UnsafeMutablePointer<Float>
        /// Per thread: a block of scores, their exponentials as u8, and the rows' inverse sums per head.
        let scores: [UnsafeMutablePointer<Float>]
        let exponentials: [UnsafeMutablePointer<UInt8>]
        let inverseSums: [UnsafeMutablePointer<Float>]
    }

    private let kernels: UnsafePointer<ck_qgemm_kernels>
    private let pool: ThreadPool
    private let buffers: Buffers

    init(buffers: Buffers, pool: ThreadPool, kernels: UnsafePointer<ck_qgemm_kernels>) {
        self.buffers = buffers
        self.kernels = kernels
        self.pool = pool
    }

    /// The attention output [n][stride(c)] quantized with `outputParams` (the input of the output projection), from u8
    /// queries [n][stride(c)] and fp32 keys and values [m][c]; `attended` [n][c] is fp32 scratch. Each block of rows
    /// runs all heads and is quantized while it is still in cache.
    func run(queries: UnsafePointer<UInt8>, queryParams: QuantParams, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
             rows n: Int, keyCount m: Int, channels c: Int, heads: Int, rowBlock: Int, scratch attended: UnsafeMutablePointer<Float>,
             outputParams: QuantParams, into attendedQ: UnsafeMutablePointer<UInt8>) {
        let set = kernels.pointee
        let d = c / heads
        let stride = ForwardPlan.byteRowStride
        let ldq = stride(c), ldk = stride(c), ldv = stride(m), lde = stride(m)
        let b = buffers, keyScale = b.keyScale, valueScale = b.valueScale
        let keyScaleValue = ck_quantize_symmetric_s8(keys, c, m, c, b.keys, ldk, 0)
        let valueScaleValue = ck_quantize_symmetric_s8(values, c, m, c, b.valuesTransposed, ldv, 1)
        let scoreScale = queryParams.scale * keyScaleValue / Float(d).squareRoot()
        keyScale.update(repeating: scoreScale, count: m)
        valueScale.update(repeating: valueScaleValue, count: d)
        // Per head: pack K_h (m keys × d) and V_hᵀ (d × m keys), and their zero-point offsets.
        let keyBase = UnsafePointer(b.keys), valueBase = UnsafePointer(b.valuesTransposed)
        for h in 0 ..< heads {
            set.pack(keyBase + h * d, m, d, ldk, b.packedKeys[h])
            ck_row_sums_s8(keyBase + h * d, m, d, ldk, queryParams.zeroPoint - set.a_shift, b.keyOffsets[h])
            set.pack(valueBase + h * d * ldv, d, m, ldv, b.packedValues[h])
            ck_row_sums_s8(valueBase + h * d * ldv, d, m, ldv, -set.a_shift, b.valueOffsets[h])
        }
        let blocks = (n + rowBlock - 1) / rowBlock
        pool.runSlots(count: blocks) { range, thread in
            let score = b.scores[thread], e = b.exponentials[thread], inverse = b.inverseSums[thread]
            for block in range {
              let row = block * rowBlock, rows = min(rowBlock, n - row)
              for h in 0 ..< heads {
                var scoreEpilogue = ck_qgemm_epilogue(offset: b.keyOffsets[h], scale: keyScale, bias: nil, relu: 0,
                                                      output: CK_QGEMM_OUT_F32, out_scale_inv: 1, out_zero_point: 0)
                set.gemm(rows, m, d, queries + row * ldq + h * d, ldq, b.packedKeys[h], &scoreEpilogue, score, m)
                ck_softmax_exp_u8(score, m, rows, m, e, lde, inverse + h * rows)
                var valueEpilogue = ck_qgemm_epilogue(offset: b.valueOffsets[h], scale: valueScale, bias: nil, relu: 0,
                                                      output: CK_QGEMM_OUT_F32, out_scale_inv: 1, out_zero_point: 0)
                let out = attended + row * c + h * d
                set.gemm(rows, d, m, e, lde, b.packedValues[h], &valueEpilogue, out, c)
              }
              ck_scale_heads_quantize_u8(attended + row * c, c, rows, heads, d, inverse, attendedQ + row * ldq, ldq,
                                         outputParams.inverseScale, outputParams.zeroPoint)
            }
        }
    }
}
