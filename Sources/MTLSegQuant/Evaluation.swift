#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

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

/// Judges int8 engines against the fp32 model on evaluation inputs. The fp32
/// masks are computed once and kept (they are small); the inputs and labels are
/// read again for every judgement, so memory does not grow with their number.
public final class AccuracyEvaluator {
    public typealias Input = (Int, UnsafeMutablePointer<Float>) throws -> Bool
    /// Label map of input i for task t, at the label's own size; nil when there is none.
    public typealias Labels = (Int, Int) throws -> (width: Int, height: Int, classes: [UInt8])?

    public let description: ModelDescription
    private let count: Int
    private let input: Input
    private let labels: Labels
    private let pixels: FloatBuffer
    /// Per input and task: the fp32 masks (nil for inputs that could not be read).
    private var reference: [[[UInt8]]?] = []
    private var labelledFP32: [ConfusionCounts]
    private var sawLabels: [Bool]

    public init(fp32Weights: MTLSegFormerWeights, width: Int, height: Int, count: Int, input: @escaping Input,
                labels: @escaping Labels = { _, _ in nil }) throws {
        description = fp32Weights.description
        self.count = count
        self.input = input
        self.labels = labels
        let tasks = description.tasks
        labelledFP32 = tasks.map { ConfusionCounts(classes: $0.classCount) }
        sawLabels = [Bool](repeating: false, count: tasks.count)
        let fp32 = FP32Engine(weights: fp32Weights, height: height, width: width)
        pixels = FloatBuffer(count: description.encoder.numChannels * fp32.plan.input.pixels)
        for i in 0 ..< count {
            guard try input(i, pixels.pointer) else {
                reference.append(nil)
                continue
            }
            fp32.run(input: pixels.pointer)
            reference.append(fp32.logits.map { SegmentationMask(logits: $0).classes })
            for t in tasks.indices {
                if let label = try labels(i, t) {
                    sawLabels[t] = true
                    labelledFP32[t].add(truth: label.classes,
                                        prediction: SegmentationMask(logits: fp32.logits[t], width: label.width, height: label.height).classes)
                }
            }
        }
        // Maps that ignore every pixel score nothing: no mIoU rather than a perfect one.
        for t in tasks.indices where labelledFP32[t].total == 0 { sawLabels[t] = false }
    }

    /// Per task: agreement and agreement-mIoU with fp32, and with labels the mIoU of both.
    public func evaluate(_ int8: SegmentationEngine) throws -> [TaskAccuracy] {
        let tasks = description.tasks
        var agreement = tasks.map { ConfusionCounts(classes: $0.classCount) }
        var labelledInt8 = agreement
        for i in 0 ..< count {
            guard let masks = reference[i], try input(i, pixels.pointer) else { continue }
            int8.run(input: pixels.pointer)
            for t in tasks.indices {
                agreement[t].add(truth: masks[t], prediction: SegmentationMask(logits: int8.logits[t]).classes)
                if sawLabels[t], let label = try labels(i, t) {
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
