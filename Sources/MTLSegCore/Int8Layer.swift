import CKernels

/// Memory on a 64-byte boundary for the int8 engine's byte buffers and packed weights.
final class AlignedBytes {
    let count: Int
    let pointer: UnsafeMutableRawPointer

    init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    var bytes: UnsafeMutablePointer<UInt8> { pointer.assumingMemoryBound(to: UInt8.self) }
}

/// One int8 layer ready to run: weights packed for the selected kernel set, and
/// the epilogue constants that turn its 32-bit sums back into real numbers given
/// how its input is quantized.
///
/// A layer whose weights stayed fp32 (a calibration fallback) runs the same
/// contract in fp32: its u8 input is dequantized, multiplied by the fp32
/// weights (BLAS), and finished with the same bias / ReLU / output step.
final class Int8Layer {
    let inFeatures: Int
    let outFeatures: Int
    private let kernels: UnsafePointer<ck_qgemm_kernels>
    private let packed: AlignedBytes?
    private let floatWeights: FloatBuffer?
    private let input: QuantParams
    private let offset: UnsafeMutablePointer<Int32>
    private let scale: UnsafeMutablePointer<Float>
    private let bias: UnsafeMutablePointer<Float>?

    /// Rows per block of the fp32 path's scratch.
    private static let floatBlockRows = 64

    /// `input` is how the layer's input activations are quantized.
    init(_ layer: LinearWeights, input: QuantParams, kernels: UnsafePointer<ck_qgemm_kernels>) {
        inFeatures = layer.inFeatures
        outFeatures = layer.outFeatures
        self.kernels = kernels
        self.input = input
        offset = .allocate(capacity: outFeatures)
        scale = .allocate(capacity: outFeatures)
        if let q = layer.quantized {
            let set = kernels.pointee
            let n = layer.outFeatures, k = layer.inFeatures
            let packed = AlignedBytes(count: set.packed_size(n, k))
            q.values.withUnsafeBufferPointer { set.pack($0.baseAddress!, n, k, k, packed.pointer) }
            self.packed = packed
            floatWeights = nil
            // Σ_k (a_k − z)·w_k = Σ_k a_k·w_k − z·Σ_k w_k: the zero point's share is a constant per column.
            let shift = input.zeroPoint - set.a_shift
            for o in 0 ..< outFeatures {
                var sum: Int32 = 0
                for i in 0 ..< inFeatures { sum += Int32(q.values[o * inFeatures + i]) }
                offset[o] = shift * sum
                scale[o] = input.scale * q.scale[o]
            }
        } else {
            precondition(layer.hasFloatWeights, "\(layer.name) has neither int8 nor fp32 weights")
            packed = nil
            floatWeights = layer.weight
        }
        if let b = layer.bias {
            bias = .allocate(capacity: outFeatures)
            bias!.update(from: b.pointer, count: outFeatures)
        } else {
            bias = nil
        }
    }

    deinit {
        offset.deallocate()
        scale.deallocate()
        bias?.deallocate()
    }

    /// Whether the layer runs in fp32 (a calibration fallback).
    var isFloat: Bool { packed == nil }

    /// Floats of scratch `run` needs (per thread running it): the fp32 path's dequantized input and output rows.
    var scratchCount: Int { isFloat ? Self.floatBlockRows * (inFeatures + outFeatures) : 0 }

    /// Rows `rows` of C = layer(A): A has rows of `lda` bytes, C rows of `ldc` elements. `scratch` holds
    /// `scratchCount` floats, the calling thread's own.
    func run(rows: Range<Int>, a: UnsafePointer<UInt8>, lda: Int, into c: UnsafeMutableRawPointer, ldc: Int,
             output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil, scratch: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        guard let packed else {
            runFloat(rows: rows, a: a, lda: lda, into: c, ldc: ldc, output: output, relu: relu, outputParams: outputParams,
                     scratch: scratch)
            return
        }
        var epilogue = ck_qgemm_epilogue(offset: offset, scale: scale, bias: bias, relu: relu ? 1 : 0, output: output,
                                         out_scale_inv: outputParams?.inverseScale ?? 1, out_zero_point: outputParams?.zeroPoint ?? 0)
        let elementSize = output == CK_QGEMM_OUT_U8 ? 1 : 4
        kernels.pointee.gemm(rows.count, outFeatures, inFeatures, a + rows.lowerBound * lda, lda, packed.pointer, &epilogue,
                             c + rows.lowerBound * ldc * elementSize, ldc)
    }

    private func runFloat(rows: Range<Int>, a: UnsafePointer<UInt8>, lda: Int, into c: UnsafeMutableRawPointer, ldc: Int,
                          output: ck_qgemm_output, relu: Bool, outputParams: QuantParams?, scratch: UnsafeMutablePointer<Float>) {
        let block = Self.floatBlockRows, k = inFeatures, n = outFeatures
        let x = scratch, y = x + block * k
        var row = rows.lowerBound
        while row < rows.upperBound {
            let count = min(block, rows.upperBound - row)
            ck_dequantize_rows_u8(a + row * lda, lda, x, k, count, k, input.scale, input.zeroPoint)
            BLAS.linear(x, rows: count, inner: k, weight: floatWeights!.pointer, outputs: n, into: y)
            if let bias { ck_add_bias_rows_f32(y, count, n, bias) }
            if relu { ck_relu_f32(y, count * n) }
            switch output {
            case CK_QGEMM_OUT_U8:
                let params = outputParams!
                ck_quantize_rows_u8(y, n, c.assumingMemoryBound(to: UInt8.self) + row * ldc, ldc, count, n,
                                    params.inverseScale, params.zeroPoint)
            case CK_QGEMM_OUT_F32_ACCUMULATE:
                let target = c.assumingMemoryBound(to: Float.self) + row * ldc
                for r in 0 ..< count { ck_add_rows_f32(target + r * ldc, y + r * n, n) }
            default:
                let target = c.assumingMemoryBound(to: Float.self) + row * ldc
                for r in 0 ..< count { (target + r * ldc).update(from: y + r * n, count: n) }
            }
            row += count
        }
    }
}
