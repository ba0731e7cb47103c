import MTLSegCore

/// Makes each frame's masks at the sizes clients asked for besides the model's own (HELLO `mask_size`):
/// once per frame for each such size, from the engine's logits (MaskUpsampler: bilinear, then argmax).
///
/// It lives on the inference thread. Its upsamplers (taps and scratch) are made when the wanted sizes
/// or the engine change, not per frame; a frame allocates only the masks it publishes.
final class SizedMaskMaker {
    private var wanted: [MaskGrid] = []
    private var engineIdentity: ObjectIdentifier?
    private var upsamplers: [MaskUpsampler] = []

    /// Gets ready for the next frame on `engine` for the sizes `grids` (the server's wanted sizes); true when
    /// the engine must write its logits (some size differs from the model's output grid).
    func prepare(for grids: [MaskGrid], engine: SegmentationEngine) -> Bool {
        let identity = ObjectIdentifier(engine)
        if grids != wanted || identity != engineIdentity {
            wanted = grids
            engineIdentity = identity
            let output = engine.plan.outputSize
            let classes = engine.logits.map { $0.shape[0] }.max() ?? 1
            // An upsampler already made for a size is kept: the logits it reads are the same size and class count.
            let kept = upsamplers.filter { $0.logitsWidth == output.width && $0.logitsHeight == output.height && $0.maxClasses == classes }
            upsamplers = grids.filter { $0.width != output.width || $0.height != output.height }.map { grid in
                kept.first { $0.width == grid.width && $0.height == grid.height }
                    ?? MaskUpsampler(logitsWidth: output.width, logitsHeight: output.height, maxClasses: classes, width: grid.width, height: grid.height)
            }
        }
        return !upsamplers.isEmpty
    }

    /// The last run's masks at every size `prepare` set up (none: an empty array, nothing allocated).
    func masks(of engine: SegmentationEngine) -> [SizedMasks] {
        upsamplers.map { upsampler in
            SizedMasks(grid: MaskGrid(width: upsampler.width, height: upsampler.height), masks: engine.logits.map { upsampler.mask(logits: $0) })
        }
    }
}
