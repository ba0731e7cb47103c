/// Turns an RGB8 frame into a model's float32 CHW input in one pass: resize, scale to [0, 1] and
/// normalise per channel, writing straight into caller-owned memory.
///
/// Each output value is `(resampled / 255 - mean[c]) / std[c]`, laid out as three planes
/// (R, G, B) of `targetHeight x targetWidth`.
///
/// Resizing reproduces PIL's `Image.resize((w, h), Image.BILINEAR)`, the resize Hugging Face's
/// SegformerImageProcessor applies before rescale and normalise (see `BilinearResampleTaps`).
/// PIL rounds to uint8 after its horizontal pass and again at the end; this implementation keeps
/// floats throughout, so results match PIL up to that rounding (less than 1/255 before
/// normalisation) and match PIL's float ("F" mode) resize to float precision.
/// When the source already has the target size no resampling happens and the output is exactly
/// `(x / 255 - mean) / std`, each value rounded once from a Double computation.
///
/// Why a class: the filter taps depend only on (source size, target size) and are computed once
/// and cached, together with a one-row scratch buffer, so a stream of same-sized camera frames
/// allocates nothing per frame. No full-size intermediate image is built: the filter is applied
/// vertically into the single scratch row, then horizontally from it into the output (the two
/// separable passes commute, so this order gives PIL's horizontal-then-vertical result).
///
/// Not thread-safe: use one instance per thread.
public final class ModelInputPreprocessor {
    public let targetWidth: Int
    public let targetHeight: Int
    public let mean: [Float]
    public let std: [Float]

    /// Number of floats written per call: `3 * targetWidth * targetHeight`.
    public var outputCount: Int { 3 * targetWidth * targetHeight }

    /// `1 / (255 * std[c])` and `-mean[c] / std[c]`: normalisation folded into one multiply-add.
    private let channelScale: (Float, Float, Float)
    private let channelBias: (Float, Float, Float)
    /// `lookup[c * 256 + v]` is the normalised value of byte `v` in channel `c` (identity-size path).
    private let lookup: [Float]

    private var horizontalTaps: BilinearResampleTaps?
    private var verticalTaps: BilinearResampleTaps?
    /// One source row, filtered vertically: `sourceWidth * 3` floats.
    private var scratchRow: UnsafeMutablePointer<Float>
    private var scratchCapacity: Int

    /// `mean`, `std`: the model's (ModelDescription's; ImageNet's unless the model names its own).
    public init(targetWidth: Int, targetHeight: Int, mean: [Float], std: [Float]) {
        precondition(targetWidth > 0 && targetHeight > 0, "target size must be positive")
        precondition(mean.count == 3 && std.count == 3, "mean and std need one value per RGB channel")
        precondition(std.allSatisfy { $0 != 0 }, "std must be non-zero")
        self.targetWidth = targetWidth
        self.targetHeight = targetHeight
        self.mean = mean
        self.std = std

        let scale = (0..<3).map { Float(1.0 / (255.0 * Double(std[$0]))) }
        let bias = (0..<3).map { Float(-Double(mean[$0]) / Double(std[$0])) }
        channelScale = (scale[0], scale[1], scale[2])
        channelBias = (bias[0], bias[1], bias[2])
        var lookup = [Float](repeating: 0, count: 3 * 256)
        for channel in 0..<3 {
            let channelMean = Double(mean[channel]), channelStd = Double(std[channel])
            for value in 0..<256 {
                lookup[channel * 256 + value] = Float((Double(value) / 255.0 - channelMean) / channelStd)
            }
        }
        self.lookup = lookup
        scratchCapacity = 0
        scratchRow = UnsafeMutablePointer<Float>.allocate(capacity: 0)
    }

    deinit {
        scratchRow.deallocate()
    }

    /// Preprocesses `image` into `output`, which must hold `outputCount` floats.
    public func process(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        image.pixels.withUnsafeBufferPointer { pixels in
            process(rgbPixels: pixels.baseAddress!, width: image.width, height: image.height,
                    rowStride: image.width * 3, into: output)
        }
    }

    /// Preprocesses interleaved RGB8 pixels whose rows start `rowStride` bytes apart (so padded
    /// camera buffers need no repacking) into `output`, which must hold `outputCount` floats.
    public func process(rgbPixels: UnsafePointer<UInt8>, width: Int, height: Int, rowStride: Int,
                        into output: UnsafeMutablePointer<Float>) {
        precondition(width > 0 && height > 0, "source image is empty (\(width)x\(height))")
        precondition(rowStride >= width * 3, "rowStride \(rowStride) is shorter than a row of \(width) RGB pixels")
        if width == targetWidth && height == targetHeight {
            normaliseWithoutResizing(rgbPixels, rowStride: rowStride, into: output)
        } else {
            prepareResampling(sourceWidth: width, sourceHeight: height)
            resampleAndNormalise(rgbPixels, sourceWidth: width, rowStride: rowStride, into: output)
        }
    }

    // MARK: - Identity size

    private func normaliseWithoutResizing(_ source: UnsafePointer<UInt8>, rowStride: Int,
                                          into output: UnsafeMutablePointer<Float>) {
        let plane = targetWidth * targetHeight
        lookup.withUnsafeBufferPointer { lookup in
            let red = lookup.baseAddress!, green = red + 256, blue = red + 512
            for y in 0..<targetHeight {
                let row = source + y * rowStride
                let outputRow = output + y * targetWidth
                for x in 0..<targetWidth {
                    outputRow[x] = red[Int(row[3 * x])]
                    outputRow[plane + x] = green[Int(row[3 * x + 1])]
                    outputRow[2 * plane + x] = blue[Int(row[3 * x + 2])]
                }
            }
        }
    }

    // MARK: - Resampling

    /// Builds taps and scratch space for a new source size; a no-op for a repeated size.
    private func prepareResampling(sourceWidth: Int, sourceHeight: Int) {
        if horizontalTaps?.sourceSize != sourceWidth {
            horizontalTaps = BilinearResampleTaps(sourceSize: sourceWidth, targetSize: targetWidth)
        }
        if verticalTaps?.sourceSize != sourceHeight {
            verticalTaps = BilinearResampleTaps(sourceSize: sourceHeight, targetSize: targetHeight)
        }
        let needed = sourceWidth * 3
        if scratchCapacity < needed {
            scratchRow.deallocate()
            scratchRow = UnsafeMutablePointer<Float>.allocate(capacity: needed)
            scratchCapacity = needed
        }
    }

    private func resampleAndNormalise(_ source: UnsafePointer<UInt8>, sourceWidth: Int, rowStride: Int,
                                      into output: UnsafeMutablePointer<Float>) {
        let plane = targetWidth * targetHeight
        let rowValues = sourceWidth * 3
        let scratch = scratchRow
        let (scaleR, scaleG, scaleB) = channelScale
        let (biasR, biasG, biasB) = channelBias
        let targetWidth = targetWidth

        horizontalTaps!.withView { horizontal in
            verticalTaps!.withView { vertical in
                for outputY in 0..<targetHeight {
                    // Vertical pass: weighted sum of the contributing source rows into `scratch`.
                    let firstRow = vertical.firstSource[outputY]
                    let rowWeights = vertical.weights.baseAddress! + outputY * vertical.stride
                    let leadRow = source + firstRow * rowStride
                    let leadWeight = rowWeights[0]
                    for i in 0..<rowValues { scratch[i] = leadWeight * Float(leadRow[i]) }
                    for tap in 1..<max(vertical.count[outputY], 1) {
                        let weight = rowWeights[tap]
                        if weight == 0 { continue }
                        let row = source + (firstRow + tap) * rowStride
                        for i in 0..<rowValues { scratch[i] += weight * Float(row[i]) }
                    }

                    // Horizontal pass: filter `scratch` into the three output planes.
                    let outputRow = output + outputY * targetWidth
                    for outputX in 0..<targetWidth {
                        let columnWeights = horizontal.weights.baseAddress! + outputX * horizontal.stride
                        var pixel = scratch + horizontal.firstSource[outputX] * 3
                        var red: Float = 0, green: Float = 0, blue: Float = 0
                        for tap in 0..<horizontal.count[outputX] {
                            let weight = columnWeights[tap]
                            red += weight * pixel[0]
                            green += weight * pixel[1]
                            blue += weight * pixel[2]
                            pixel += 3
                        }
                        outputRow[outputX] = red * scaleR + biasR
                        outputRow[plane + outputX] = green * scaleG + biasG
                        outputRow[2 * plane + outputX] = blue * scaleB + biasB
                    }
                }
            }
        }
    }
}
