#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture
import MTLSegCore
import MTLSegImage

/// Capture → latest-frame slot → preprocessing → inference → publishing.
///
/// The source's thread only drops each frame into the slot; one inference
/// thread takes the newest frame, converts, resizes and normalises it straight
/// into the engine's input (no full-size float image), runs the model, turns
/// the logits into class-id masks (also at each size some client asked for,
/// SizedMaskMaker) and hands them to the server.
public final class InferencePipeline: @unchecked Sendable {
    public static let latencyNames = ["queue", "preprocess", "inference", "postprocess"]

    private let source: FrameSource
    private let server: MaskServer
    private let slot = LatestFrameSlot()
    private let lock = Lock()
    private var engine: SegmentationEngine
    private var generation = 0
    private var preprocessor: ModelInputPreprocessor
    private var input: FloatBuffer
    private var statistics = PipelineCounters()
    /// Recent capture and publishing times (and latencies), for live rates and percentiles.
    let recentCaptures = RecentFrames()
    let recentPublished = RecentFrames()
    let histograms = LatencyHistograms(stages: InferencePipeline.latencyNames.count)
    private var lastPublished: UInt64 = 0
    private let thread = StoppableThread()

    /// `mean`, `std`: the model's input normalisation (ModelDescription).
    public init(source: FrameSource, engine: SegmentationEngine, mean: [Float], std: [Float], server: MaskServer) {
        self.source = source
        self.server = server
        self.engine = engine
        // The daemon publishes masks only: the int8 engine takes them in its classifier's epilogue. It writes
        // its logits only for frames some client wants at another size than the model's (SizedMaskMaker).
        engine.writesLogits = false
        preprocessor = ModelInputPreprocessor(targetWidth: engine.plan.input.width, targetHeight: engine.plan.input.height,
                                              mean: mean, std: std)
        input = FloatBuffer(count: preprocessor.outputCount)
    }

    public var counters: PipelineCounters {
        lock.lock()
        defer { lock.unlock() }
        var c = statistics
        c.captured = source.counters.captured
        c.droppedByDriver = source.counters.droppedByDriver
        return c
    }

    /// CLOCK_MONOTONIC nanoseconds of the last published frame (0: none yet).
    public var lastPublishedNanoseconds: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return lastPublished
    }

    public var sourceState: SourceState { source.state }
    public var sourceName: String { source.name }
    public var sourceCounters: SourceCounters { source.counters }

    public func start() {
        source.start(deliver: { [slot, recentCaptures, weak self] frame in
            recentCaptures.record(at: Clock.monotonicNanoseconds())
            if slot.put(frame) {
                self?.lock.lock()
                self?.statistics.skippedBeforeInference += 1
                self?.lock.unlock()
            }
        }, stateChanged: { state in
            DaemonLog.info("source: \(state)")
        })
        thread.start(name: "inference") { [self] thread in inferenceLoop(thread) }
    }

    /// Stops capture, lets the frame in flight finish, and joins the inference thread.
    public func stop() {
        source.stop()
        thread.stop(wake: slot.close)
    }

    /// Runs the next frames on another engine (model reload); the frame in flight finishes on the old one.
    public func replaceEngine(_ newEngine: SegmentationEngine, mean: [Float], std: [Float], generation newGeneration: Int) {
        let newPreprocessor = ModelInputPreprocessor(targetWidth: newEngine.plan.input.width, targetHeight: newEngine.plan.input.height,
                                                     mean: mean, std: std)
        let newInput = FloatBuffer(count: newPreprocessor.outputCount)
        newEngine.writesLogits = false
        lock.lock()
        engine = newEngine
        generation = newGeneration
        preprocessor = newPreprocessor
        input = newInput
        lock.unlock()
    }

    private func inferenceLoop(_ thread: StoppableThread) {
        var lastGeneration = 0
        let maskMaker = SizedMaskMaker()
        while !thread.shouldStop {
            guard let frame = slot.take(timeout: 0.5) else { continue }
            lock.lock()
            let engine = self.engine, preprocessor = self.preprocessor, input = self.input, generation = self.generation
            lock.unlock()
            if generation != lastGeneration {
                // A reload: the previous engine went with the last frame it ran (the daemon let go of it before
                // handing this one over), so its memory is free now; give it back to the system.
                Allocator.returnFreeMemory()
                lastGeneration = generation
            }
            let start = Clock.monotonicNanoseconds()
            frame.pixels.withUnsafeBufferPointer {
                preprocessor.process(rgbPixels: $0.baseAddress!, width: frame.width, height: frame.height, rowStride: frame.width * 3,
                                     into: input.pointer)
            }
            let preprocessed = Clock.monotonicNanoseconds()
            engine.writesLogits = maskMaker.prepare(for: server.wantedMaskGrids, engine: engine)
            engine.run(input: input.pointer)
            let inferred = Clock.monotonicNanoseconds()
            let masks = maskMaker.modelMasks(of: engine)
            let sized = maskMaker.sizedMasks(of: engine)
            let postprocessed = Clock.monotonicNanoseconds()
            let latencies = [start &- min(frame.monotonicNanoseconds, start), preprocessed - start, inferred - preprocessed, postprocessed - inferred]
                .map { UInt32(min($0 / 1000, UInt64(UInt32.max))) }
            server.publish(PublishedFrame(sequence: frame.sequence, captureMonotonicNanoseconds: frame.monotonicNanoseconds,
                                          captureRealtimeNanoseconds: frame.realtimeNanoseconds, latenciesMicroseconds: latencies,
                                          masks: masks, sized: sized, generation: generation))
            let now = Clock.monotonicNanoseconds()
            recentPublished.record(at: now, latencies: latencies)
            histograms.record(microseconds: latencies)
            lock.lock()
            statistics.inferred += 1
            statistics.published += 1
            lastPublished = now
            lock.unlock()
        }
    }
}
