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

        public init(method: RangeMethod = .mse, maxDrop: Double? = nil, attentionInInt8: Bool = true) {
            self.method = method
            self.maxDrop = maxDrop
            self.attentionInInt8 = attentionInInt8
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

        // Per-layer SQNR on a few calibration images, for the report and the fallback order.
        let plan = ForwardPlan(description: fp32.description, height: height, width: width)
        let observer = LayerSQNRObserver(weights: model.weights, grids: statistics.grids, plan: plan)
        let engine = FP32Engine(weights: fp32, height: height, width: width)
        engine.observer = observer
        let pixels = FloatBuffer(count: fp32.description.encoder.numChannels * width * height)
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
        return Result(model: model, layers: layers, accuracy: accuracy, budgetHeld: failure == nil, failure: failure,
                      activationsOnly: activationsOnly)
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
