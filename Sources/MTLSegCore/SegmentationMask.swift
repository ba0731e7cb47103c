import CKernels

/// Class ids per pixel: the argmax over a task's logits.
public struct SegmentationMask: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// Row-major class ids.
    public let classes: [UInt8]

    /// Class ids made elsewhere (an engine's argmax), row-major.
    public init(width: Int, height: Int, classes: [UInt8]) {
        precondition(classes.count == width * height, "\(classes.count) classes for \(width)×\(height) pixels")
        self.width = width
        self.height = height
        self.classes = classes
    }

    /// The argmax over the channels of [K][height][width] logits (the first maximum wins, as in PyTorch).
    public init(logits: Tensor) {
        precondition(logits.shape.count == 3 && logits.shape[0] <= 256, "logits must be [K<=256][h][w]")
        let k = logits.shape[0]
        height = logits.shape[1]
        width = logits.shape[2]
        let plane = width * height
        var best = [Float](repeating: -.infinity, count: plane)
        var classes = [UInt8](repeating: 0, count: plane)
        let values = logits.pointer
        for c in 0 ..< k {
            let row = values + c * plane
            for p in 0 ..< plane where row[p] > best[p] {
                best[p] = row[p]
                classes[p] = UInt8(c)
            }
        }
        self.classes = classes
    }

    /// The argmax after resizing the logits bilinearly to width×height, as HF's
    /// `post_process_semantic_segmentation` does with a target size.
    public init(logits: Tensor, width: Int, height: Int) {
        let k = logits.shape[0], h = logits.shape[1], w = logits.shape[2]
        if w == width && h == height {
            self.init(logits: logits)
            return
        }
        let resized = Tensor(shape: [k, height, width], storage: FloatBuffer(count: k * width * height))
        for c in 0 ..< k {
            ck_resize_bilinear_hwc_f32(logits.pointer + c * w * h, h, w, 1, resized.pointer + c * width * height, height, width, 0)
        }
        self.init(logits: resized)
    }

    /// The mask scaled to width×height by nearest neighbour (each target pixel takes the class of the source pixel
    /// its centre falls in), as masks are drawn over an image.
    public func scaledNearest(width targetWidth: Int, height targetHeight: Int) -> SegmentationMask {
        precondition(targetWidth > 0 && targetHeight > 0, "target size must be positive")
        if targetWidth == width && targetHeight == height { return self }
        // floor((t + 0.5) · source / target), in integers so that exact halves do not depend on float rounding.
        let columns = (0 ..< targetWidth).map { min((2 * $0 + 1) * width / (2 * targetWidth), width - 1) }
        var scaled = [UInt8](repeating: 0, count: targetWidth * targetHeight)
        for y in 0 ..< targetHeight {
            let source = min((2 * y + 1) * height / (2 * targetHeight), height - 1) * width
            for x in 0 ..< targetWidth { scaled[y * targetWidth + x] = classes[source + columns[x]] }
        }
        return SegmentationMask(width: targetWidth, height: targetHeight, classes: scaled)
    }

    /// The share of pixels of each class, for summaries.
    public func classFractions(classCount: Int) -> [Double] {
        pixelCounts(classCount: classCount).map { Double($0) / Double(max(classes.count, 1)) }
    }

    /// Pixels of each class below `classCount`.
    public func pixelCounts(classCount: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for c in classes where Int(c) < classCount { counts[Int(c)] += 1 }
        return counts
    }
}
