import MTLSegCore

/// Makes each frame's masks at the sizes clients asked for besides the model's own (HELLO `mask_size`):
/// once per frame for each such size, from the engine's logits (MaskUpsampler: bilinear, then argmax).
///
/// It lives on the inference thread. Its upsamplers (taps and scratch) and the pools of mask blocks are
/// made when the wanted sizes or the engine change, not per frame: in the steady state a frame's masks,
/// the model's own included, are written into blocks of frames already sent (MaskPlanes).
final class SizedMaskMaker {
    private var wanted: [MaskGrid] = []
    /// The engine the pools were made for. Weak, and compared by identity: an address alone could be a freed engine's
    /// reused by the next one after two reloads (the pools then of the old model's grid), and a strong reference
    /// would keep a replaced model in memory.
    private weak var preparedEngine: SegmentationEngine?
    private var upsamplers: [(upsampler: MaskUpsampler, pool: MaskPlanePool)] = []
    private var modelPool: MaskPlanePool?

    /// Gets ready for the next frame on `engine` for the sizes `grids` (the server's wanted sizes); true when
    /// the engine must write its logits (some size differs from the model's output grid).
    func prepare(for grids: [MaskGrid], engine: SegmentationEngine) -> Bool {
        if grids != wanted || preparedEngine !== engine {
            wanted = grids
            preparedEngine = engine
            let output = engine.plan.outputSize
            let classes = engine.logits.map { $0.shape[0] }.max() ?? 1
            let tasks = engine.logits.count
            let modelGrid = MaskGrid(width: output.width, height: output.height)
            if modelPool?.grid != modelGrid || modelPool?.taskCount != tasks { modelPool = MaskPlanePool(grid: modelGrid, taskCount: tasks) }
            // What was made for a size is kept while the logits it reads keep their size and class count.
            let kept = upsamplers.filter {
                $0.upsampler.logitsWidth == output.width && $0.upsampler.logitsHeight == output.height && $0.upsampler.maxClasses == classes
                    && $0.pool.taskCount == tasks
            }
            upsamplers = grids.filter { $0 != modelGrid }.map { grid in
                kept.first { $0.pool.grid == grid }
                    ?? (MaskUpsampler(logitsWidth: output.width, logitsHeight: output.height, maxClasses: classes, width: grid.width, height: grid.height),
                        MaskPlanePool(grid: grid, taskCount: tasks))
            }
        }
        return !upsamplers.isEmpty
    }

    /// The last run's masks at the model's output grid (its argmax, as the engine took it).
    func modelMasks(of engine: SegmentationEngine) -> MaskPlanes {
        let planes = MaskPlanes(from: modelPool!)
        for t in 0 ..< planes.taskCount {
            let mask = engine.mask(task: t).classes
            let plane = planes.plane(t)
            mask.withUnsafeBufferPointer { plane.baseAddress!.update(from: $0.baseAddress!, count: plane.count) }
        }
        return planes
    }

    /// The last run's masks at every other size `prepare` set up (none: an empty array, nothing allocated).
    func sizedMasks(of engine: SegmentationEngine) -> [MaskPlanes] {
        upsamplers.map { made in
            let planes = MaskPlanes(from: made.pool)
            for (t, logits) in engine.logits.enumerated() {
                made.upsampler.mask(logits: logits.pointer, classes: logits.shape[0], into: planes.plane(t).baseAddress!)
            }
            return planes
        }
    }
}
