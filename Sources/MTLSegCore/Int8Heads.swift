import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch

/// Everything after the decoder in the int8 engine, run band by band: a band of pixels of the fused decoder map
/// goes through the task maps, the gates, the cross-task sum, the combine conv, the classifier and its argmax while
/// it stays in cache, on the thread pool. Each step writes what the next one reads (fp32 task maps for the fp32
/// gates, which write the u8 concatenations for the combine conv, u8 features for the classifier), so no
/// full-resolution intermediate exists. With one task only the classifier runs.
///
/// The arithmetic is the unfused path's (`Int8Engine(fusedHeads: false)`), call for call on fewer rows: the task
/// maps' products are per column, so stacking their weights changes no sum; the gates are the same per-pixel kernel
/// (`ck_gate_concat_u8`) on a band. `Int8HeadsTests` checks the logits are equal bit for bit.
final class Int8Heads {
    /// One task's layers after its task map, and the grids of the combine conv's input and output.
    struct TaskLayers {
        let taskMap, combine, classifier: Int8Layer
        let concat, combined: QuantParams
    }

    /// The parts of the heads `mtlseg bench` reports, in order.
    enum Part: Int, CaseIterable {
        case taskMaps, gates, combine, classifier
        /// (`allCases.count` makes an array: not in a frame, which allocates nothing.)
        static let count = 4
        var name: String { ["heads: task maps", "heads: gates", "heads: combine", "heads: classifier + argmax"][rawValue] }
    }

    /// Pixels per band: a multiple of the tiles' rows (4, 6 and 8 in the kernel sets: 72 = 3 · 24; at 64 the
    /// dot-product set's 6-row tiles computed 66 rows), small enough that a band's maps (about 2.8 KB per pixel at
    /// D = 256, two tasks) stay in L2 beside the weights, large enough that the products run whole tiles.
    static let bandPixels = 72

    /// Band buffers of one thread (cut from the engine's arena by `Int8Buffers`).
    struct Band {
        /// All tasks' maps, [bandPixels][T·D] fp32 (task t in columns t·D ..< (t+1)·D).
        let taskMaps: UnsafeMutablePointer<Float>
        /// The gates' scratch (`CrossTaskGates.scratchCount`).
        let gateScratch: UnsafeMutablePointer<Float>
        /// [F_t | G_t] in u8, rows of stride(2D) bytes.
        let concat: UnsafeMutablePointer<UInt8>
        /// Z_t in u8, rows of stride(D) bytes.
        let combined: UnsafeMutablePointer<UInt8>
        /// The classifier's logits, [bandPixels][K].
        let logits: UnsafeMutablePointer<Float>
    }

    private let weights: MTLSegFormerWeights
    private let pool: ThreadPool
    private let tasks: [TaskLayers]
    /// One task: the decoder's classifier.
    private let classifier: Int8Layer?
    /// All tasks' task maps as one product (nil when one of them fell back to fp32 and they cannot be stacked).
    private let stackedTaskMaps: Int8Layer?
    private var bands: [Band] = []
    /// Per thread and task, the task's gates over the thread's band ([slot][t]).
    private var gates: [[CrossTaskGates]] = []
    private var layerScratch: [UnsafeMutablePointer<Float>] = []
    private let pixels: Int
    private let width: Int
    /// Per thread and task, pixels per class of the current run ([threads][T][256]).
    private let slotCounts: UnsafeMutablePointer<UInt32>
    /// Per thread and part, nanoseconds of the current run, when profiling.
    private let slotNanoseconds: UnsafeMutablePointer<UInt64>
    var profiling = false

    /// The layers the heads run (for sizing the layers' scratch).
    var layers: [Int8Layer] {
        [classifier, stackedTaskMaps].compactMap { $0 } + tasks.flatMap { [$0.taskMap, $0.combine, $0.classifier] }
    }

    init(weights: MTLSegFormerWeights, grid: (QuantPoint) -> QuantParams, outputPixels: Int,
         kernels: UnsafePointer<ck_qgemm_kernels>, pool: ThreadPool) {
        self.weights = weights
        self.pool = pool
        pixels = outputPixels
        width = weights.decoder.width
        classifier = weights.classifier.map { Int8Layer($0, input: grid(.fused), kernels: kernels) }
        tasks = weights.heads.enumerated().map { t, head in
            TaskLayers(taskMap: Int8Layer(head.taskMap, input: grid(.fused), kernels: kernels),
                       combine: Int8Layer(head.combine, input: grid(.taskConcat(t)), kernels: kernels),
                       classifier: Int8Layer(head.classifier, input: grid(.taskCombined(t)), kernels: kernels),
                       concat: grid(.taskConcat(t)), combined: grid(.taskCombined(t)))
        }
        stackedTaskMaps = Self.stack(weights.heads.map(\.taskMap)).map { Int8Layer($0, input: grid(.fused), kernels: kernels) }
        let threads = pool.threadCount
        slotCounts = .allocate(capacity: threads * max(1, weights.description.tasks.count) * 256)
        slotNanoseconds = .allocate(capacity: threads * Part.count)
        slotNanoseconds.initialize(repeating: 0, count: threads * Part.count)
    }

    /// Gives the heads their band buffers and the layers' scratch, per thread (the layers are made before the arena
    /// is sized, the bands are cut from it after).
    func attach(bands: [Band], layerScratch: [UnsafeMutablePointer<Float>]) {
        precondition(bands.count == pool.threadCount && layerScratch.count == pool.threadCount, "one band per thread")
        self.bands = bands
        gates = tasks.isEmpty ? [] : bands.map { band in
            let maps = weights.heads.indices.map { UnsafePointer(band.taskMaps + $0 * width) }
            return weights.heads.map { CrossTaskGates($0, maps: maps) }
        }
        self.layerScratch = layerScratch
    }

    deinit {
        slotCounts.deallocate()
        slotNanoseconds.deallocate()
    }

    /// The task-map layers as one [T·D][D] layer, when all are int8: per output column the product, offset, scale
    /// and bias are those of the column's own layer, so the stacked product's columns equal the separate ones.
    private static func stack(_ layers: [LinearWeights]) -> LinearWeights? {
        guard layers.count > 1, let first = layers.first else { return nil }
        let quantized = layers.compactMap(\.quantized)
        guard quantized.count == layers.count, layers.allSatisfy({ $0.inFeatures == first.inFeatures }) else { return nil }
        let out = layers.map(\.outFeatures).reduce(0, +)
        let bias = FloatBuffer(count: out)
        var column = 0
        for layer in layers {
            for o in 0 ..< layer.outFeatures { bias[column + o] = layer.bias?[o] ?? 0 }
            column += layer.outFeatures
        }
        // A missing bias is +0 either way (the epilogue adds +0.0f for none).
        return LinearWeights(name: layers.map(\.name).joined(separator: "+"), layout: first.layout, inFeatures: first.inFeatures,
                             outFeatures: out, weight: FloatBuffer(count: 0), bias: bias,
                             quantized: QuantizedTensor(values: Array(quantized.map(\.values).joined()),
                                                        scale: Array(quantized.map(\.scale).joined())))
    }

    /// Runs the heads on the fused decoder map (u8, rows of `fusedLd` bytes). Logits go to `logits` (channels-first)
    /// when `writeLogits`; the class of every pixel always goes to `masks[t]`, and the pixels per class to
    /// `counts` ([T][256]).
    func run(fused: UnsafePointer<UInt8>, fusedLd: Int, logits: [Tensor], writeLogits: Bool, masks: [UnsafeMutablePointer<UInt8>],
             counts: UnsafeMutablePointer<Int>) {
        let taskCount = max(1, tasks.count), threads = pool.threadCount, parts = Part.count
        slotCounts.update(repeating: 0, count: threads * taskCount * 256)
        if profiling { slotNanoseconds.update(repeating: 0, count: threads * parts) }
        let bandCount = (pixels + Self.bandPixels - 1) / Self.bandPixels
        // One part per band: each thread starts on its own contiguous run of bands and takes the others' bands one at
        // a time once its run is done, so the threads finish within a band of each other. In runSlots' chunks of
        // several bands (a band is ~0.14 ms at 256²), a thread held up at the end kept the other waiting for a whole
        // chunk; when those chunks were also uneven (32 bands against 25), that cost an eighth of the heads' time at
        // two threads.
        pool.run(parts: bandCount) { band, slot in
            let first = band * Self.bandPixels
            runBand(first: first, count: min(Self.bandPixels, pixels - first), slot: slot, fused: fused, fusedLd: fusedLd,
                    logits: logits, writeLogits: writeLogits, masks: masks)
        }
        for t in 0 ..< taskCount {
            for k in 0 ..< 256 {
                var sum = 0
                for slot in 0 ..< threads { sum += Int(slotCounts[(slot * taskCount + t) * 256 + k]) }
                counts[t * 256 + k] = sum
            }
        }
    }

    /// Milliseconds per part of the last run (each part's time summed over the threads, divided by their number).
    var partMilliseconds: [(name: String, ms: Double)] {
        let threads = pool.threadCount, parts = Part.count
        return Part.allCases.filter { tasks.isEmpty ? $0 == .classifier : true }.map { part in
            var total: UInt64 = 0
            for slot in 0 ..< threads { total += slotNanoseconds[slot * parts + part.rawValue] }
            return (part.name, Double(total) / 1e6 / Double(threads))
        }
    }

    /// Adds the time since the last lap to a part's total (a struct: a nested function capturing the clock would box it
    /// on the heap, and a frame allocates nothing).
    private struct PartClock {
        let enabled: Bool
        let totals: UnsafeMutablePointer<UInt64>
        var last: UInt64

        init(enabled: Bool, totals: UnsafeMutablePointer<UInt64>) {
            self.enabled = enabled
            self.totals = totals
            last = enabled ? DispatchTime.now().uptimeNanoseconds : 0
        }

        mutating func lap(_ part: Part) {
            guard enabled else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            totals[part.rawValue] += now - last
            last = now
        }
    }

    private func runBand(first: Int, count n: Int, slot: Int, fused: UnsafePointer<UInt8>, fusedLd: Int, logits: [Tensor],
                         writeLogits: Bool, masks: [UnsafeMutablePointer<UInt8>]) {
        let b = bands[slot], scratch = layerScratch[slot], rows = 0 ..< n, d = width, ld = ForwardPlan.byteRowStride(d)
        let features = fused + first * fusedLd
        var clock = PartClock(enabled: profiling, totals: slotNanoseconds + slot * Part.count)
        if let classifier {
            classify(features, lda: fusedLd, rows: n, with: classifier, task: 0, first: first, slot: slot, logits: logits,
                     writeLogits: writeLogits, masks: masks)
            clock.lap(.classifier)
            return
        }
        let taskCount = tasks.count, taskLd = taskCount * d, concatLd = ForwardPlan.byteRowStride(2 * d)
        // F_t = ReLU(BN(Conv1x1(F))) of every task, fp32 (the gates read them unquantized).
        if let stackedTaskMaps {
            stackedTaskMaps.run(rows: rows, a: features, lda: fusedLd, into: b.taskMaps, ldc: taskLd, output: CK_QGEMM_OUT_F32, relu: true,
                                scratch: scratch)
        } else {
            for t in tasks.indices {
                tasks[t].taskMap.run(rows: rows, a: features, lda: fusedLd, into: b.taskMaps + t * d, ldc: taskLd, output: CK_QGEMM_OUT_F32,
                                     relu: true, scratch: scratch)
            }
        }
        clock.lap(.taskMaps)
        let slotGates = gates[slot]
        for t in tasks.indices {
            let layers = tasks[t]
            // [F_t | G_t] quantized side by side, G_t = Σ_j sigmoid(w_self·F_t + w_other·F_j + b) ⊙ F_j.
            slotGates[t].run(own: b.taskMaps + t * d, ld: taskLd, pixels: n, channels: d, grid: layers.concat, into: b.concat, ldo: concatLd,
                             scratch: b.gateScratch)
            clock.lap(.gates)
            layers.combine.run(rows: rows, a: b.concat, lda: concatLd, into: b.combined, ldc: ld, output: CK_QGEMM_OUT_U8, relu: true,
                               outputParams: layers.combined, scratch: scratch)
            clock.lap(.combine)
            classify(b.combined, lda: ld, rows: n, with: layers.classifier, task: t, first: first, slot: slot, logits: logits,
                     writeLogits: writeLogits, masks: masks)
            clock.lap(.classifier)
        }
    }

    /// The classifier on one band, then its logits into the channels-first map and its argmax into the mask.
    private func classify(_ features: UnsafePointer<UInt8>, lda: Int, rows n: Int, with layer: Int8Layer, task t: Int, first: Int,
                          slot: Int, logits: [Tensor], writeLogits: Bool, masks: [UnsafeMutablePointer<UInt8>]) {
        let b = bands[slot], k = layer.outFeatures
        layer.run(rows: 0 ..< n, a: features, lda: lda, into: b.logits, ldc: k, output: CK_QGEMM_OUT_F32, scratch: layerScratch[slot])
        if writeLogits { ck_hwc_rows_to_chw_f32(b.logits, k, logits[t].pointer, pixels, first, n, k) }
        ck_argmax_count_f32(b.logits, k, n, k, masks[t] + first, slotCounts + (slot * max(1, tasks.count) + t) * 256)
    }
}
