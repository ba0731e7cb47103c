/// A mask size some client asked for (HELLO `mask_size`), resolved to pixels.
public struct MaskGrid: Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public var description: String { "\(width)x\(height)" }
}

/// One frame's masks at a size other than the model's output grid, per task in task order.
public struct SizedMasks: Sendable {
    public var grid: MaskGrid
    public var masks: [[UInt8]]

    public init(grid: MaskGrid, masks: [[UInt8]]) {
        self.grid = grid
        self.masks = masks
    }
}

/// The masks of one inferred frame, as the pipeline hands them to the server.
public struct PublishedFrame: Sendable {
    public var sequence: UInt64
    public var captureMonotonicNanoseconds: UInt64
    public var captureRealtimeNanoseconds: UInt64
    public var latenciesMicroseconds: [UInt32]
    /// Raw class ids per task, in task order, at the model's output grid (`grid`).
    public var masks: [[UInt8]]
    /// The size of `masks`.
    public var grid: MaskGrid
    /// The same frame's masks at each other size a client asked for when it was inferred.
    public var sized: [SizedMasks]
    /// Which model made the masks (0 at start, then one more per reload): frames of a model
    /// the stream no longer describes are never sent after its STREAM_CHANGED.
    public var generation: Int = 0

    public init(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                latenciesMicroseconds: [UInt32], masks: [[UInt8]], grid: MaskGrid = MaskGrid(width: 0, height: 0),
                sized: [SizedMasks] = [], generation: Int = 0) {
        self.generation = generation
        self.sequence = sequence
        self.captureMonotonicNanoseconds = captureMonotonicNanoseconds
        self.captureRealtimeNanoseconds = captureRealtimeNanoseconds
        self.latenciesMicroseconds = latenciesMicroseconds
        self.masks = masks
        self.grid = grid
        self.sized = sized
    }

    /// The masks at `grid` (nil: the model's), or nil when the frame was not made at that size.
    public func masks(at wanted: MaskGrid?) -> [[UInt8]]? {
        guard let wanted, wanted != grid else { return masks }
        for entry in sized where entry.grid == wanted { return entry.masks }
        return nil
    }
}
