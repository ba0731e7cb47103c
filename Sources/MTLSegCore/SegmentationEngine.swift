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
    /// false: runs may skip writing `logits` (the int8 engine then only takes their argmax); `mask` stays exact.
    var writesLogits: Bool { get set }
    func run(input: UnsafePointer<Float>)
    /// Task t's classes per pixel ([h/4][w/4]) of the last run: the argmax of its logits, the first maximum winning.
    func mask(task: Int) -> SegmentationMask
}

extension Int8Engine: SegmentationEngine {
    public var precisionName: String { "int8 (\(kernelName))" }
}

extension Int8Engine {
    /// The engine an int8 model's quantization record calls for: its activation grids, attention's precision and
    /// its wide decoder inputs. The one place a record becomes an engine, so that a field added to the record is
    /// honoured by every tool.
    public convenience init(weights: MTLSegFormerWeights, record: QuantizationRecord, height: Int, width: Int, threads: Int) throws {
        try self.init(weights: weights, activations: record.grids(for: weights.description), height: height, width: width, threads: threads,
                      attentionInInt8: record.attentionInInt8, wideDecoderInputs: Set(record.wideDecoderInputs ?? []))
    }
}

public enum Precision: String, CaseIterable, Sendable {
    /// int8 when the model file is int8, else fp32.
    case auto
    case fp32
}

/// Opens the engine a model file calls for.
public enum EngineFactory {
    /// The engine for the model at `path`, with its description. The file is
    /// closed before the engine's memory is laid out, so the two never add up.
    /// The input size is `size`, else the model's own, else `defaultSize`. The memory the engine would
    /// need is checked against `budget` before any weight is read.
    public static func open(path: String, size: InputSize? = nil, defaultSize: InputSize = InputSize(width: 512, height: 512), threads: Int,
                            precision: Precision = .auto, budget: MemoryBudget = .standard(raisedBy: "--memory-budget MB"),
                            warn: (String) -> Void = ModelWarnings.standardError) throws -> (engine: SegmentationEngine, description: ModelDescription) {
        let (description, weights, record, input) = try { () throws -> (ModelDescription, MTLSegFormerWeights, QuantizationRecord?, InputSize) in
            let source = try ModelSource(path: path)
            source.warnings.forEach(warn)
            let int8 = precision == .auto && source.quantization != nil
            let input = size ?? source.description.input ?? defaultSize
            try checkBudget(source: source, height: input.height, width: input.width, threads: threads, int8: int8, budget: budget)
            return (source.description, try MTLSegFormerWeights(source: source, floatWeights: !int8), int8 ? source.quantization : nil, input)
        }()
        if let record {
            setMatrixThreads(1)  // the engine's own pool spreads the work; OpenBLAS runs inside it
            return (try Int8Engine(weights: weights, record: record, height: input.height, width: input.width, threads: threads), description)
        }
        setMatrixThreads(threads)
        return (FP32Engine(weights: weights, height: input.height, width: input.width), description)
    }

    /// The engine for `source` at height×width; `weights` are read from it unless given. The memory the
    /// engine would need is checked against `budget` first.
    public static func make(source: ModelSource, weights: MTLSegFormerWeights? = nil, height: Int, width: Int, threads: Int,
                            precision: Precision = .auto, budget: MemoryBudget = .standard(raisedBy: "--memory-budget MB")) throws -> SegmentationEngine {
        let int8 = precision == .auto && source.quantization != nil
        try checkBudget(source: source, height: height, width: width, threads: threads, int8: int8, budget: budget)
        if int8, let record = source.quantization {
            setMatrixThreads(1)  // the engine's own pool spreads the work; OpenBLAS runs inside it
            let weights = try weights ?? MTLSegFormerWeights(source: source, floatWeights: false)
            return try Int8Engine(weights: weights, record: record, height: height, width: width, threads: threads)
        }
        setMatrixThreads(threads)
        return FP32Engine(weights: try weights ?? MTLSegFormerWeights(source: source), height: height, width: width)
    }

    /// Refuses, before anything is allocated, an engine whose memory would exceed `budget`.
    public static func checkBudget(source: ModelSource, height: Int, width: Int, threads: Int, int8: Bool, budget: MemoryBudget) throws {
        let plan = MemoryPlan(description: source.description, height: height, width: width, entries: source.file.entries,
                              engine: int8 ? .int8 : .fp32, threads: threads)
        try plan.check(budget, model: source.path, input: MapSize(height: height, width: width))
    }
}
