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
final class Int8Layer {
    let inFeatures: Int
    let outFeatures: Int
    private let kernels: UnsafePointer<ck_qgemm_kernels>
    private let packed: AlignedBytes
    private let offset: UnsafeMutablePointer<Int32>
    private let scale: UnsafeMutablePointer<Float>
    private let bias: UnsafeMutablePointer<Float>?

    /// `layer` must carry its int8 form; `input` is how the layer's input activations are quantized.
    init(_ layer: LinearWeights, input: QuantParams, kernels: UnsafePointer<ck_qgemm_kernels>) {
        guard let q = layer.quantized else { preconditionFailure("\(layer.name) has no int8 weights") }
        inFeatures = layer.inFeatures
        outFeatures = layer.outFeatures
        self.kernels = kernels
        let set = kernels.pointee
        let n = layer.outFeatures, k = layer.inFeatures
        let packed = AlignedBytes(count: set.packed_size(n, k))
        q.values.withUnsafeBufferPointer { set.pack($0.baseAddress!, n, k, k, packed.pointer) }
        self.packed = packed
        offset = .allocate(capacity: outFeatures)
        scale = .allocate(capacity: outFeatures)
        // Σ_k (a_k − z)·w_k = Σ_k a_k·w_k − z·Σ_k w_k: the zero point's share is a constant per column.
        let shift = input.zeroPoint - set.a_shift
        for o in 0 ..< outFeatures {
            var sum: Int32 = 0
            for i in 0 ..< inFeatures { sum += Int32(q.values[o * inFeatures + i]) }
            offset[o] = shift * sum
            scale[o] = input.scale * q.scale[o]
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

    /// Rows `rows` of C = layer(A): A has rows of `lda` bytes, C rows of `ldc` elements.
    func run(rows: Range<Int>, a: UnsafePointer<UInt8>, lda: Int, into c: UnsafeMutableRawPointer, ldc: Int,
             output: ck_qgemm_output, relu: Bool = false, outputParams: QuantParams? = nil) {
        guard !rows.isEmpty else { return }
        var epilogue = ck_qgemm_epilogue(offset: offset, scale: scale, bias: bias, relu: relu ? 1 : 0, output: output,
                                         out_scale_inv: outputParams?.inverseScale ?? 1, out_zero_point: outputParams?.zeroPoint ?? 0)
        let elementSize = output == CK_QGEMM_OUT_U8 ? 1 : 4
        kernels.pointee.gemm(rows.count, outFeatures, inFeatures, a + rows.lowerBound * lda, lda, packed.pointer, &epilogue,
                             c + rows.lowerBound * ldc * elementSize, ldc)
    }
}
