import CKernels

/// Masks at a size other than the model's output grid, as HF's `post_process_semantic_segmentation`
/// makes them for a target size: each task's logits resized bilinearly (PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False)`), then the argmax per pixel (the first
/// maximum wins, as `torch.argmax`).
///
/// One upsampler serves one (logits size, mask size) pair and any task of up to `maxClasses` classes.
/// Its taps and scratch are allocated here, once; a mask writes into memory the caller gives, so a
/// frame allocates nothing here.
public final class MaskUpsampler {
    public let width: Int
    public let height: Int
    public let logitsWidth: Int
    public let logitsHeight: Int
    public let maxClasses: Int
    private let x0: UnsafeMutablePointer<UInt32>, x1: UnsafeMutablePointer<UInt32>
    private let wx0: UnsafeMutablePointer<Float>, wx1: UnsafeMutablePointer<Float>
    private let y0: UnsafeMutablePointer<UInt32>, y1: UnsafeMutablePointer<UInt32>
    private let wy0: UnsafeMutablePointer<Float>, wy1: UnsafeMutablePointer<Float>
    /// maxClasses planes of logitsHeight rows, each resized to `width`.
    private let rows: UnsafeMutablePointer<Float>
    private let best: UnsafeMutablePointer<Float>

    /// Bytes this upsampler holds (its taps and scratch).
    public var byteCount: Int { (width + height) * 16 + (maxClasses * logitsHeight * width + width) * 4 }

    public init(logitsWidth: Int, logitsHeight: Int, maxClasses: Int, width: Int, height: Int) {
        precondition(logitsWidth > 0 && logitsHeight > 0 && width > 0 && height > 0, "sizes must be positive")
        precondition(maxClasses >= 1 && maxClasses <= 256, "1 to 256 classes")
        self.logitsWidth = logitsWidth
        self.logitsHeight = logitsHeight
        self.maxClasses = maxClasses
        self.width = width
        self.height = height
        x0 = .allocate(capacity: width)
        x1 = .allocate(capacity: width)
        wx0 = .allocate(capacity: width)
        wx1 = .allocate(capacity: width)
        y0 = .allocate(capacity: height)
        y1 = .allocate(capacity: height)
        wy0 = .allocate(capacity: height)
        wy1 = .allocate(capacity: height)
        rows = .allocate(capacity: maxClasses * logitsHeight * width)
        best = .allocate(capacity: width)
        ck_linear_taps_f32(logitsWidth, width, x0, x1, wx0, wx1)
        ck_linear_taps_f32(logitsHeight, height, y0, y1, wy0, wy1)
    }

    deinit {
        for pointer in [x0, x1, y0, y1] { pointer.deallocate() }
        for pointer in [wx0, wx1, wy0, wy1, rows, best] { pointer.deallocate() }
    }

    /// The mask of `logits` ([K][logitsHeight][logitsWidth], K ≤ maxClasses) into `mask` (width × height bytes, row-major).
    public func mask(logits: UnsafePointer<Float>, classes: Int, into mask: UnsafeMutablePointer<UInt8>) {
        precondition(classes >= 1 && classes <= maxClasses, "\(classes) classes for an upsampler of at most \(maxClasses)")
        ck_resample_rows_f32(logits, classes * logitsHeight, logitsWidth, rows, width, x0, x1, wx0, wx1)
        ck_blend_argmax_rows_f32(rows, classes, logitsHeight, width, y0, y1, wy0, wy1, mask, 0, height, best)
    }

    /// The mask of `logits` ([K][logitsHeight][logitsWidth]) as a new array of class ids.
    public func mask(logits: Tensor) -> [UInt8] {
        precondition(logits.shape.count == 3 && logits.shape[1] == logitsHeight && logits.shape[2] == logitsWidth,
                     "logits \(logits.shape) for an upsampler from \(logitsWidth)×\(logitsHeight)")
        return [UInt8](unsafeUninitializedCapacity: width * height) { buffer, count in
            mask(logits: logits.pointer, classes: logits.shape[0], into: buffer.baseAddress!)
            count = width * height
        }
    }
}
