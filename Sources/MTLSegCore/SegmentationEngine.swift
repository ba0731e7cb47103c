/// What the tools and the daemon need of an engine, whichever precision it runs.
public protocol SegmentationEngine: AnyObject {
    var plan: ForwardPlan { get }
    /// Per task: logits [K_t][h/4][w/4] of the last run.
    var logits: [Tensor] { get }
    /// "fp32" or "int8 (<kernel set>)".
    var precisionName: String { get }
    /// Milliseconds per part of the last run, when profiling is on.
    var stageMilliseconds: [(name: String, ms: Double)] { get }
    var profiling: Bool { get set }
    func run(input: UnsafePointer<Float>)
}

extension Int8Engine: SegmentationEngine {
    public var precisionName: String { "int8 (\(kernelName))" }
}

public enum Precision: String, CaseIterable, Sendable {
    /// int8 when the model file is int8, else fp32.
    case auto
    case fp32
}

/// Opens the engine a model file calls for.
public enum EngineFactory {
    public static func make(source: ModelSource, weights: MTLSegFormerWeights, height: Int, width: Int, threads: Int,
                            precision: Precision = .auto) throws -> SegmentationEngine {
        if precision == .auto, let record = source.quantization {
            setMatrixThreads(1)  // the engine's own pool spreads the work; OpenBLAS runs inside it
            return try Int8Engine(weights: weights, activations: record.activations, height: height, width: width, threads: threads)
        }
        setMatrixThreads(threads)
        return FP32Engine(weights: weights, height: height, width: width)
    }
}
