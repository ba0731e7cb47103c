import CKernels

/// An overlapping patch embedding run as a 16-bit integer convolution (ckernels_conv_s16.h):
/// the int8 engine's choice for the embeddings that stay out of int8 (see
/// `MTLSegFormerWeights.int8EmbeddingStages`) where the CPU has a fast kernel for it.
/// The input is quantized per frame with its own max |x| (13 bits), the weights once
/// per output channel (10 to 15 bits, as the sums allow): an error a sixteenth or less
/// of int8's, at half the instructions of fp32.
final class Int16Embedding {
    let kernel, stride, padding, inChannels, outChannels: Int
    let input: MapSize
    let output: MapSize
    /// Columns of the bordered input map.
    let mapWidth: Int
    /// int16 elements of the bordered input map.
    let mapCount: Int
    private let packed: AlignedBytes
    private let weightScales: FloatBuffer
    /// Input scale × weight scale per output channel, set each frame.
    private let outputScales: FloatBuffer
    private let bias: FloatBuffer?

    /// nil where this CPU's int16 kernel is below `speed` (ck_conv2d_s16_fast: 1 a SIMD kernel, 2 one faster than
    /// the fp32 convolution's), or the geometry leaves the weights under 7 bits.
    init?(_ layer: LinearWeights, kernel: Int, stride: Int, inChannels: Int, input: MapSize, output: MapSize, speed: Int32) {
        guard ck_conv2d_s16_fast() >= speed, ck_conv2d_s16_weight_max(kernel, inChannels) > 0 else { return nil }
        self.kernel = kernel
        self.stride = stride
        padding = kernel / 2
        self.inChannels = inChannels
        outChannels = layer.outFeatures
        self.input = input
        self.output = output
        mapWidth = ck_conv2d_s16_map_width(input.width, kernel, stride, padding)
        mapCount = ck_conv2d_s16_map_height(input.height, padding) * mapWidth * ck_conv2d_s16_channel_stride(inChannels)
        let count = ck_conv2d_s16_packed_size(outChannels, kernel, inChannels)
        packed = AlignedBytes(count: count * 2)
        weightScales = FloatBuffer(count: outChannels)
        outputScales = FloatBuffer(count: outChannels)
        ck_conv2d_s16_pack(layer.weight.pointer, outChannels, kernel, inChannels, packed.pointer.assumingMemoryBound(to: Int16.self),
                           weightScales.pointer)
        bias = layer.bias
    }

    /// The convolution of `source` (in(y, x, c) = source[y·rowStride + x·pixelStride + c·channelStride]) into
    /// `out` ([output pixels][outChannels]), through `map` (at least `mapCount` int16, its contents not kept).
    func run(source: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, channelStride: Int, map: UnsafeMutablePointer<Int16>,
             into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let largest = ck_max_abs_f32(source, input.pixels * inChannels)
        let inputScale = largest > 0 ? largest / Float(CK_S16_INPUT_MAX) : 1
        for o in 0 ..< outChannels { outputScales[o] = inputScale * weightScales[o] }
        ck_zero_s16_map_border(map, input.height, input.width, inChannels, mapWidth, padding)
        pool.runRanges(count: input.height) { rows in
            ck_quantize_s16_map(source, input.width, inChannels, rowStride, pixelStride, channelStride, 1 / inputScale, map, mapWidth,
                                padding, rows.lowerBound, rows.count)
        }
        let weights = UnsafePointer(packed.pointer.assumingMemoryBound(to: Int16.self))
        pool.runRanges(count: output.height) { rows in
            ck_conv2d_s16(map, mapWidth, inChannels, weights, outChannels, kernel, stride, outputScales.pointer, bias?.pointer, out,
                          output.width, rows.lowerBound, rows.count)
        }
    }
}
