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

/// The masks of one inferred frame, as the pipeline hands them to the server.
public struct PublishedFrame: Sendable {
    public var sequence: UInt64
    public var captureMonotonicNanoseconds: UInt64
    public var captureRealtimeNanoseconds: UInt64
    public var latenciesMicroseconds: [UInt32]
    /// Class ids per task, in task order, at the model's output grid.
    public var masks: MaskPlanes
    /// The same frame's masks at each other size a client asked for when it was inferred.
    public var sized: [MaskPlanes]
    /// Which model made the masks (0 at start, then one more per reload): frames of a model
    /// the stream no longer describes are never sent after its STREAM_CHANGED.
    public var generation: Int = 0

    public init(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                latenciesMicroseconds: [UInt32], masks: MaskPlanes, sized: [MaskPlanes] = [], generation: Int = 0) {
        self.generation = generation
        self.sequence = sequence
        self.captureMonotonicNanoseconds = captureMonotonicNanoseconds
        self.captureRealtimeNanoseconds = captureRealtimeNanoseconds
        self.latenciesMicroseconds = latenciesMicroseconds
        self.masks = masks
        self.sized = sized
    }

    /// Masks given as arrays (copied), at `grid`.
    public init(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                latenciesMicroseconds: [UInt32], masks: [[UInt8]], grid: MaskGrid = MaskGrid(width: 0, height: 0), generation: Int = 0) {
        self.init(sequence: sequence, captureMonotonicNanoseconds: captureMonotonicNanoseconds, captureRealtimeNanoseconds: captureRealtimeNanoseconds,
                  latenciesMicroseconds: latenciesMicroseconds, masks: MaskPlanes(grid: grid, masks: masks), generation: generation)
    }

    /// The masks at `grid` (nil: the model's), or nil when the frame was not made at that size.
    public func masks(at wanted: MaskGrid?) -> MaskPlanes? {
        guard let wanted, wanted != masks.grid else { return masks }
        for planes in sized where planes.grid == wanted { return planes }
        return nil
    }
}
