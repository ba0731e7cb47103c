#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCore

/// The whole calibration: measure ranges on the calibration images, quantize,
/// judge int8 against fp32 on the held-out images, and — with an accuracy
/// budget — move the layers that lose most back to fp32 until every task holds.
public struct CalibrationSession {
    public struct Options {
        public var method: RangeMethod = .mse
        /// Agreement-mIoU points a task may lose against fp32; nil: no budget.
        public var maxDrop: Double?
        /// Calibration images the per-layer SQNR is measured on (it costs a few products per layer).
        public var sqnrImages = 8
        /// Whether attention's two matrix products run in int8 (else fp32).
        public var attentionInInt8 = true
        /// How the int8 weights are rounded.
        public var rounding: WeightRounding = .data
        /// What the int8 layers' biases take back out.
        public var biasCorrection: BiasCorrectionMode = .weights
        /// Whether every combination of rounding and bias correction is evaluated too, for the report.
        public var compareTechniques = true
        /// Where activations are smoothed per channel before quantizing (`SmoothingSites`).
        public var smoothing: SmoothingSites = .decoder
        /// How many of the deepest stages (never the first) have their decoder projection read the stage's output at
        /// 16 bits (from fp32) instead of u8 (`QuantizationRecord.wideDecoderInputs`).
        public var wideDecoderInputs = 2

        public init(method: RangeMethod = .mse, maxDrop: Double? = nil, attentionInInt8: Bool = true,
                    rounding: WeightRounding = .data, biasCorrection: BiasCorrectionMode = .weights, compareTechniques: Bool = true,
                    smoothing: SmoothingSites = .decoder, wideDecoderInputs: Int = 2) {
            self.wideDecoderInputs = wideDecoderInputs
            self.smoothing = smoothing
            self.method = method
            self.maxDrop = maxDrop
            self.attentionInInt8 = attentionInInt8
            self.rounding = rounding
            self.biasCorrection = biasCorrection
            self.compareTechniques = compareTechniques
        }
    }

    public struct LayerReport: Codable, Equatable {
        public var name: String
        /// dB; nil when the layer had no measurable noise.
        public var sqnr: Double?
        public var fallback: Bool
    }

    public struct Result {
        public var model: QuantizedModel
        public var layers: [LayerReport]
        public var accuracy: [TaskAccuracy]
        /// Whether every task is within the budget (true when there is none).
        public var budgetHeld: Bool
        /// Why the budget could not be held, when it could not.
        public var failure: String?
        /// The same evaluation with every layer's weights in fp32 (activations still u8): what the activations
        /// alone cost, so the report can say whether weights or activations limit the accuracy.
        public var activationsOnly: [TaskAccuracy]
        /// Per combination of rounding and bias correction (before any fallback), the accuracy it reaches.
        public var techniques: [TechniqueAccuracy] = []
        /// Per layer, what the refinement of its weights changed.
        public var refinement: [WeightRefinement.LayerEffect] = []
        /// Per smoothed layer (attention's output projections, the decoder's readers), the smoothing chosen (empty when off).
        public var smoothing: [ChannelSmoothing.Choice] = []
    }

    /// The accuracy one combination of the weight techniques reaches.
    public struct TechniqueAccuracy: Codable, Equatable {
        public var rounding: String
        public var biasCorrection: String
        public var tasks: [TaskAccuracy]

        enum CodingKeys: String, CodingKey { case rounding, biasCorrection = "bias_correction", tasks }
    }

    public let fp32: MTLSegFormerWeights
    public let width: Int
    public let height: Int
    public let options: Options

    public init(fp32: MTLSegFormerWeights, width: Int, height: Int, options: Options) {
        self.fp32 = fp32
        self.width = width
        self.height = height
        self.options = options
    }

    /// `calibration(i, buffer)` and `evaluation` write their i-th normalised input (false: skip it).
    public func run(calibrationCount: Int, calibration: @escaping AccuracyEvaluator.Input, evaluator: AccuracyEvaluator,
                    info: CalibrationInfo, progress: (String, Int, Int) -> Void = { _, _, _ in }) throws -> Result {
        // Smoothing first: everything after quantizes the smoothed network (the same function in fp32).
        var smoothing: [ChannelSmoothing.Choice] = []
        var source = self.fp32
        if !options.smoothing.isEmpty {
            var points = Set<QuantPoint>()
            if options.smoothing.contains(.attention) { points.formUnion(AttentionSmoothing.points(of: source)) }
            if options.smoothing.contains(.decoder) { points.formUnion(DecoderSmoothing.points(of: source)) }
            let ranges = ChannelRangeObserver(points: points)
            let engine = FP32Engine(weights: source, height: height, width: width)
            engine.observer = ranges
            let pixels = FloatBuffer(count: source.description.encoder.numChannels * width * height)
            for i in 0 ..< calibrationCount {
                if try calibration(i, pixels.pointer) { engine.run(input: pixels.pointer) }
                progress("channel ranges", i + 1, calibrationCount)
            }
            // The two rewrite disjoint parts of the network, so the ranges of one pass serve both.
            if options.smoothing.contains(.attention) {
                let (smoothed, choices) = AttentionSmoothing.smoothing(source, ranges: ranges.largest)
                source = smoothed
                smoothing += choices
            }
            if options.smoothing.contains(.decoder) {
                let (smoothed, choices) = DecoderSmoothing.smoothing(source, ranges: ranges.largest)
                source = smoothed
                smoothing += choices
            }
        }
        let fp32 = source
        let passes = options.method == .minMax ? 1 : 2
        var used = 0
        let statistics = try Calibrator(weights: fp32, width: width, height: height)
            .measure(count: calibrationCount, method: options.method, input: { i, target in
                let ok = try calibration(i, target)
                if ok { used += 1 }
                return ok
            }) { progress("measuring ranges", $0, passes * calibrationCount) }
        guard used > 0 else { throw NoUsableImages() }
        var model = QuantizedModel(fp32: fp32, statistics: statistics, calibration: info)
        if !options.attentionInInt8 {
            var record = model.record
            record.attention = "fp32"
            model = QuantizedModel(weights: model.weights, record: record)
        }
        if options.wideDecoderInputs > 0 {
            // The deepest stages' outputs reach the most output pixels (upsampled furthest) through the fewest MACs.
            let stages = Array(max(1, fp32.stages.count - options.wideDecoderInputs) ..< fp32.stages.count)
            model = model.fallingBack(Set(stages.map { fp32.decoder.stageProjections[$0].name }), fp32: fp32)
            var record = model.record
            record.wideDecoderInputs = stages
            model = QuantizedModel(weights: model.weights, record: record)
        }

        let plan = ForwardPlan(description: fp32.description, height: height, width: width)
        let engine = FP32Engine(weights: fp32, height: height, width: width)
        let pixels = FloatBuffer(count: fp32.description.encoder.numChannels * width * height)

        // Weight refinements: one more pass gathers each layer's input moments, then the weights are rounded and the
        // biases corrected as chosen (and every other combination evaluated, for the report).
        var techniques: [TechniqueAccuracy] = []
        var refinement: [WeightRefinement.LayerEffect] = []
        if options.rounding != .nearest || options.biasCorrection != .weights || options.compareTechniques {
            let inputs = LayerInputStatistics(weights: fp32, grids: statistics.grids, plan: plan)
            engine.observer = inputs
            for i in 0 ..< calibrationCount {
                if try calibration(i, pixels.pointer) { engine.run(input: pixels.pointer) }
                progress("layer inputs", i + 1, calibrationCount)
            }
            engine.observer = nil
            let base = model
            let needsData = options.rounding == .data || options.compareTechniques
            let dataRounded = needsData ? WeightRefinement.dataRounding(of: base, fp32: fp32, inputs: inputs) { progress("rounding", $0, $1) } : [:]
            func variant(_ rounding: WeightRounding, _ bias: BiasCorrectionMode,
                         measuringEffects: Bool = true) -> (model: QuantizedModel, effects: [WeightRefinement.LayerEffect]) {
                WeightRefinement.apply(to: base, fp32: fp32, inputs: inputs, rounded: rounding == .data ? dataRounded : [:], biasCorrection: bias,
                                       measuringEffects: measuringEffects)
            }
            if options.compareTechniques {
                for rounding in WeightRounding.allCases {
                    for bias in BiasCorrectionMode.allCases {
                        let accuracy = try evaluator.evaluate(try variant(rounding, bias, measuringEffects: false).model.makeEngine(height: height, width: width, threads: 1))
                        techniques.append(TechniqueAccuracy(rounding: rounding.rawValue, biasCorrection: bias.rawValue, tasks: accuracy))
                        progress("techniques", techniques.count, WeightRounding.allCases.count * BiasCorrectionMode.allCases.count)
                    }
                }
            }
            // The model kept is the one whose effects the report gives (with the defaults' rounding to nearest and
            // weights' bias correction too: this pass's moments then replace the channel means `model` was corrected by).
            (model, refinement) = variant(options.rounding, options.biasCorrection)
        }

        // Per-layer SQNR on a few calibration images, for the report and the fallback order.
        let observer = LayerSQNRObserver(weights: model.weights, grids: statistics.grids, plan: plan)
        engine.observer = observer
        let sqnrCount = min(options.sqnrImages, calibrationCount)
        for i in 0 ..< sqnrCount {
            if try calibration(i, pixels.pointer) { engine.run(input: pixels.pointer) }
            progress("layer SQNR", i + 1, sqnrCount)
        }
        let sqnr = observer.sqnr
        let order = model.weights.int8Layers.map(\.name).sorted { (sqnr[$0] ?? .infinity) < (sqnr[$1] ?? .infinity) }

        var fallbacks: [String] = []
        var accuracy = try evaluator.evaluate(try model.makeEngine(height: height, width: width, threads: 1))
        var failure: String?
        if let budget = options.maxDrop {
            var next = order.makeIterator()
            while let worst = accuracy.first(where: { 100 - $0.agreementMIoU > budget }) {
                guard let layer = next.next() else {
                    failure = String(cFormat: "with all %d int8 layers back in fp32, task '%@' still loses %.2f agreement-mIoU points (budget %.2f): "
                                     + "the rest is the activations' quantization, which falling back layers does not remove; "
                                     + "try another --method or a larger budget", order.count, worst.task, 100 - worst.agreementMIoU, budget)
                    break
                }
                fallbacks.append(layer)
                model = model.fallingBack(Set(fallbacks), fp32: fp32)
                accuracy = try evaluator.evaluate(try model.makeEngine(height: height, width: width, threads: 1))
                progress("fallbacks", fallbacks.count, order.count)
            }
        }
        var record = model.record
        record.calibration.fallbacks = fallbacks
        record.calibration.accuracy = accuracy
        model = QuantizedModel(weights: model.weights, record: record)
        let allFloat = model.fallingBack(Set(order), fp32: fp32)
        let activationsOnly = try evaluator.evaluate(try allFloat.makeEngine(height: height, width: width, threads: 1))
        let layers = model.weights.int8Layers.map { layer in
            LayerReport(name: layer.name, sqnr: sqnr[layer.name].flatMap { $0.isFinite ? $0 : nil }, fallback: fallbacks.contains(layer.name))
        }
        var result = Result(model: model, layers: layers, accuracy: accuracy, budgetHeld: failure == nil, failure: failure,
                            activationsOnly: activationsOnly)
        result.techniques = techniques
        result.refinement = refinement
        result.smoothing = smoothing
        return result
    }
}

/// None of the calibration inputs could be read.
public struct NoUsableImages: Error, CustomStringConvertible {
    public var description: String { "none of the calibration images could be read" }
}

extension QuantizedModel {
    /// The same model with the named layers' weights back in fp32 (taken from `fp32`, bias correction undone).
    func fallingBack(_ names: Set<String>, fp32: MTLSegFormerWeights) -> QuantizedModel {
        let originals = Dictionary(uniqueKeysWithValues: fp32.int8Layers.map { ($0.name, $0) })
        let weights = self.weights.mappingLayers { layer in
            guard names.contains(layer.name), let original = originals[layer.name] else { return layer }
            return LinearWeights(name: original.name, layout: original.layout, inFeatures: original.inFeatures,
                                 outFeatures: original.outFeatures, weight: original.weight, bias: original.bias, quantized: nil)
        }
        return QuantizedModel(weights: weights, record: record)
    }
}
