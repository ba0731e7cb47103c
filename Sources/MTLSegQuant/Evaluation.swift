import Foundation
import MTLSegCore

/// How well one task's int8 masks hold up, over an evaluation set.
public struct TaskAccuracy: Codable, Equatable, Sendable {
    public var task: String
    /// Share of pixels whose int8 class equals the fp32 class.
    public var agreement: Double
    /// Mean over classes of the IoU between the int8 and the fp32 masks (fp32 taken as ground truth), 0…100.
    public var agreementMIoU: Double
    /// With labels: mIoU (0…100) of fp32 and of int8 against them.
    public var fp32MIoU: Double?
    public var int8MIoU: Double?

    enum CodingKeys: String, CodingKey {
        case task, agreement, agreementMIoU = "agreement_miou", fp32MIoU = "fp32_miou", int8MIoU = "int8_miou"
    }
}

/// Intersection and union counts per class, accumulated over images.
struct ConfusionCounts {
    var intersection: [Int]
    var union: [Int]
    var agreeing = 0
    var total = 0

    init(classes: Int) {
        intersection = [Int](repeating: 0, count: classes)
        union = intersection
    }

    /// `truth` and `prediction` are class ids of the same pixels; truth 255 means "ignore".
    mutating func add(truth: [UInt8], prediction: [UInt8]) {
        for (t, p) in zip(truth, prediction) where t != 255 {
            total += 1
            if t == p {
                agreeing += 1
                if Int(t) < intersection.count { intersection[Int(t)] += 1; union[Int(t)] += 1 }
            } else {
                if Int(t) < union.count { union[Int(t)] += 1 }
                if Int(p) < union.count { union[Int(p)] += 1 }
            }
        }
    }

    /// Mean IoU over the classes that occur (in truth or prediction), in percent.
    var meanIoU: Double {
        let present = zip(intersection, union).filter { $0.1 > 0 }
        guard !present.isEmpty else { return 100 }
        return present.map { Double($0.0) / Double($0.1) }.reduce(0, +) / Double(present.count) * 100
    }

    var pixelAgreement: Double { total == 0 ? 1 : Double(agreeing) / Double(total) }
}

/// Runs an int8 engine beside the fp32 one on evaluation inputs, one input at a time (nothing is kept).
public struct AccuracyEvaluator {
    public let description: ModelDescription
    public let fp32: FP32Engine

    public init(fp32Weights: MTLSegFormerWeights, width: Int, height: Int) {
        description = fp32Weights.description
        fp32 = FP32Engine(weights: fp32Weights, height: height, width: width)
    }

    /// `input(i, buffer)` writes evaluation input i (false: skip it); `labels(i, task)` gives its label map, if any,
    /// at `labelSize(i)` (masks are compared at the label's resolution).
    public func evaluate(_ int8: SegmentationEngine, count: Int, input: (Int, UnsafeMutablePointer<Float>) throws -> Bool,
                         labels: (Int, Int) throws -> (width: Int, height: Int, classes: [UInt8])? = { _, _ in nil }) rethrows -> [TaskAccuracy] {
        let tasks = description.tasks
        var agreement = tasks.map { ConfusionCounts(classes: $0.classCount) }
        var labelledFP32 = agreement, labelledInt8 = agreement
        var sawLabels = [Bool](repeating: false, count: tasks.count)
        let pixels = FloatBuffer(count: description.encoder.numChannels * fp32.plan.input.pixels)
        for i in 0 ..< count {
            guard try input(i, pixels.pointer) else { continue }
            fp32.run(input: pixels.pointer)
            int8.run(input: pixels.pointer)
            for t in tasks.indices {
                let reference = SegmentationMask(logits: fp32.logits[t]), candidate = SegmentationMask(logits: int8.logits[t])
                agreement[t].add(truth: reference.classes, prediction: candidate.classes)
                if let label = try labels(i, t) {
                    sawLabels[t] = true
                    labelledFP32[t].add(truth: label.classes,
                                        prediction: SegmentationMask(logits: fp32.logits[t], width: label.width, height: label.height).classes)
                    labelledInt8[t].add(truth: label.classes,
                                        prediction: SegmentationMask(logits: int8.logits[t], width: label.width, height: label.height).classes)
                }
            }
        }
        return tasks.indices.map { t in
            TaskAccuracy(task: tasks[t].name, agreement: agreement[t].pixelAgreement, agreementMIoU: agreement[t].meanIoU,
                         fp32MIoU: sawLabels[t] ? labelledFP32[t].meanIoU : nil, int8MIoU: sawLabels[t] ? labelledInt8[t].meanIoU : nil)
        }
    }
}
