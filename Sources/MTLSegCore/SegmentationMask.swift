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
    /// `post_process_semantic_segmentation` does with a target size (MaskUpsampler).
    public init(logits: Tensor, width: Int, height: Int) {
        let k = logits.shape[0], h = logits.shape[1], w = logits.shape[2]
        if w == width && h == height {
            self.init(logits: logits)
            return
        }
        let upsampler = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: k, width: width, height: height)
        self.init(width: width, height: height, classes: upsampler.mask(logits: logits))
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
