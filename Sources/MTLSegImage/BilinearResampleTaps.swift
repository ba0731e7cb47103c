/// Per-output-pixel filter taps for resampling one axis with PIL's BILINEAR filter.
///
/// This is a port of `precompute_coeffs` in Pillow's `libImaging/Resample.c`, which is what
/// `Image.resize(size, Image.BILINEAR)` runs (and therefore what Hugging Face's
/// SegformerImageProcessor feeds models in training):
///   * pixel centres at `i + 0.5`, so output pixel `o` samples the source at
///     `centre = (o + 0.5) * sourceSize / targetSize`;
///   * a triangle filter of support 1 source pixel when upscaling, widened by the scale factor when
///     downscaling, so every source pixel contributes (antialiasing instead of point sampling);
///   * weights normalised to sum to 1 after clipping at the image edges.
/// Weights are computed in Double, as Pillow does, and stored as Float.
struct BilinearResampleTaps: Sendable {
    let sourceSize: Int
    let targetSize: Int
    /// Taps reserved per output pixel; `weights` has `targetSize * stride` entries.
    let stride: Int
    /// First source index read by each output pixel.
    let firstSource: [Int]
    /// Number of taps actually used by each output pixel (≤ stride).
    let count: [Int]
    let weights: [Float]

    init(sourceSize: Int, targetSize: Int) {
        precondition(sourceSize > 0 && targetSize > 0, "resample sizes must be positive")
        self.sourceSize = sourceSize
        self.targetSize = targetSize

        let bilinearSupport = 1.0
        let scale = Double(sourceSize) / Double(targetSize)
        let filterScale = max(scale, 1.0)
        let support = bilinearSupport * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        let inverseFilterScale = 1.0 / filterScale

        var firstSource = [Int](repeating: 0, count: targetSize)
        var count = [Int](repeating: 0, count: targetSize)
        var weights = [Float](repeating: 0, count: targetSize * stride)
        var tapWeights = [Double](repeating: 0, count: stride)

        for output in 0..<targetSize {
            let centre = (Double(output) + 0.5) * scale
            // Int(_:) truncates toward zero like Pillow's C casts; the clamps make the difference
            // from floor irrelevant for negative values.
            let first = max(Int(centre - support + 0.5), 0)
            let end = min(Int(centre + support + 0.5), sourceSize)
            let taps = end - first
            var total = 0.0
            for tap in 0..<taps {
                let distance = (Double(tap + first) - centre + 0.5) * inverseFilterScale
                let weight = max(1.0 - abs(distance), 0.0)
                tapWeights[tap] = weight
                total += weight
            }
            for tap in 0..<taps {
                weights[output * stride + tap] = Float(total != 0 ? tapWeights[tap] / total : 0)
            }
            firstSource[output] = first
            count[output] = taps
        }

        self.stride = stride
        self.firstSource = firstSource
        self.count = count
        self.weights = weights
    }
}

extension BilinearResampleTaps {
    /// Raw views of the tap tables, so hot loops index without array bounds checks or retains.
    struct View {
        let stride: Int
        let firstSource: UnsafeBufferPointer<Int>
        let count: UnsafeBufferPointer<Int>
        let weights: UnsafeBufferPointer<Float>
    }

    func withView<Result>(_ body: (View) throws -> Result) rethrows -> Result {
        try firstSource.withUnsafeBufferPointer { firstSource in
            try count.withUnsafeBufferPointer { count in
                try weights.withUnsafeBufferPointer { weights in
                    try body(View(stride: stride, firstSource: firstSource, count: count, weights: weights))
                }
            }
        }
    }
}
