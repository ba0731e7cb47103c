#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// How a tensor of activations is written as u8: x ≈ (q − zeroPoint) · scale.
public struct QuantParams: Codable, Equatable, Sendable {
    public var scale: Float
    public var zeroPoint: Int32

    enum CodingKeys: String, CodingKey { case scale, zeroPoint = "zero_point" }

    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// The affine u8 grid over [min, max], widened to contain 0 so that 0.0 (zero padding, ReLU) is exact.
    public init(min: Float, max: Float) {
        let lo = Swift.min(min, 0), hi = Swift.max(max, 0)
        let scale = hi > lo ? (hi - lo) / 255 : 1
        self.scale = scale
        zeroPoint = Int32(Swift.max(0, Swift.min(255, (-lo / scale).rounded(.toNearestOrEven))))
    }

    public var inverseScale: Float { 1 / scale }
}

/// Weights of one layer as symmetric int8 per output channel: w ≈ values · scale[out].
public struct QuantizedTensor {
    /// Row-major [out][in], in the same input order as the layer's fp32 weight.
    public let values: [Int8]
    public let scale: [Float]

    /// Quantizes [out][in] weights per row (output channel), symmetric: of the
    /// scales that clip the row's largest weights at 70…100 % of max |w|, the one
    /// with the smallest squared rounding-plus-clipping error.
    public init(weights: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int) {
        var values = [Int8](repeating: 0, count: outFeatures * inFeatures)
        var scale = [Float](repeating: 1, count: outFeatures)
        for o in 0 ..< outFeatures {
            let row = weights + o * inFeatures
            var largest: Float = 0
            for i in 0 ..< inFeatures { largest = Swift.max(largest, abs(row[i])) }
            guard largest > 0 else { continue }
            var best = (error: Double.infinity, scale: largest / 127)
            for step in 0 ... 30 {
                let s = largest * (1 - 0.01 * Float(step)) / 127
                var error = 0.0
                for i in 0 ..< inFeatures {
                    let q = Swift.max(-127, Swift.min(127, (row[i] / s).rounded(.toNearestOrEven)))
                    let e = Double(row[i] - q * s)
                    error += e * e
                }
                if error < best.error { best = (error, s) }
            }
            scale[o] = best.scale
            for i in 0 ..< inFeatures {
                values[o * inFeatures + i] = Int8(Swift.max(-127, Swift.min(127, (row[i] / best.scale).rounded(.toNearestOrEven))))
            }
        }
        self.values = values
        self.scale = scale
    }

    public init(values: [Int8], scale: [Float]) {
        self.values = values
        self.scale = scale
    }

    /// values · scale, as the fp32 weights the int8 layer stands for.
    func dequantized(outFeatures: Int, inFeatures: Int) -> FloatBuffer {
        let out = FloatBuffer(count: values.count)
        for o in 0 ..< outFeatures {
            for i in 0 ..< inFeatures { out[o * inFeatures + i] = Float(values[o * inFeatures + i]) * scale[o] }
        }
        return out
    }
}

/// What an int8 model file records beside its weights (`__metadata__["mtlseg_quantization"]`):
/// the u8 grid of every quantized activation, and how it was calibrated.
public struct QuantizationRecord: Codable, Equatable, Sendable {
    public static let metadataKey = "mtlseg_quantization"

    public var formatVersion: Int = 1
    /// Activation quantization per point in the network, by `QuantPoint.name`.
    public var activations: [String: QuantParams]
    public var calibration: CalibrationInfo
    /// How attention's two matrix products run: "int8" (absent: the default) or "fp32".
    public var attention: String?
    /// Stages (1…, not the first) whose decoder projection reads the stage's output at 16 bits, from fp32, instead of
    /// its u8 grid; their projections' weights are stored in fp32 (absent: none).
    public var wideDecoderInputs: [Int]?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", activations, calibration, attention, wideDecoderInputs = "wide_decoder_inputs"
    }

    /// Whether attention's products run in int8.
    public var attentionInInt8: Bool { attention != "fp32" }

    /// The grid of every point of `description`'s network, read from `activations`; throws naming the first one missing
    /// (and `path`, the file, where known; else the model's name).
    public func grids(for description: ModelDescription, path: String? = nil) throws -> [QuantPoint: QuantParams] {
        var grids: [QuantPoint: QuantParams] = [:]
        for point in QuantPoint.all(for: description) {
            guard let params = activations[point.name] else {
                throw ModelError.badMetadata(path: path ?? description.name, field: "\(Self.metadataKey).activations.\(point.name)",
                                             reason: "missing")
            }
            grids[point] = params
        }
        return grids
    }

    /// The record of `grids` (keyed by the points' names, as the file stores them).
    public init(grids: [QuantPoint: QuantParams], calibration: CalibrationInfo) {
        self.init(activations: Dictionary(uniqueKeysWithValues: grids.map { ($0.key.name, $0.value) }), calibration: calibration)
    }

    public init(activations: [String: QuantParams], calibration: CalibrationInfo) {
        self.activations = activations
        self.calibration = calibration
    }
}

/// How the int8 model was made, and how well it held up.
public struct CalibrationInfo: Codable, Equatable, Sendable {
    public var method: String
    /// Images the ranges were measured on.
    public var images: Int
    public var width: Int
    public var height: Int
    public var sourceModel: String
    public var createdAt: String
    /// Held-out images the accuracy below was measured on.
    public var evalImages: Int?
    /// Layers kept in fp32 to hold the accuracy budget.
    public var fallbacks: [String]?
    /// Per task, int8 against fp32 on the held-out images.
    public var accuracy: [TaskAccuracy]?

    enum CodingKeys: String, CodingKey {
        case method, images, width, height, sourceModel = "source_model", createdAt = "created_at", evalImages = "eval_images"
        case fallbacks, accuracy
    }

    public init(method: String, images: Int, width: Int, height: Int, sourceModel: String, createdAt: String,
                evalImages: Int? = nil, fallbacks: [String]? = nil, accuracy: [TaskAccuracy]? = nil) {
        self.method = method
        self.images = images
        self.width = width
        self.height = height
        self.sourceModel = sourceModel
        self.createdAt = createdAt
        self.evalImages = evalImages
        self.fallbacks = fallbacks
        self.accuracy = accuracy
    }
}

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

    public init(task: String, agreement: Double, agreementMIoU: Double, fp32MIoU: Double? = nil, int8MIoU: Double? = nil) {
        self.task = task
        self.agreement = agreement
        self.agreementMIoU = agreementMIoU
        self.fp32MIoU = fp32MIoU
        self.int8MIoU = int8MIoU
    }
}

/// An activation the int8 engine quantizes: the input of one or more of its int8 layers.
/// The fp32 engine reports the same points to a calibration observer. The image itself
/// is not one: the first convolution runs outside int8 (see
/// `MTLSegFormerWeights.int8EmbeddingStages`). `name` is the point's key in a model file;
/// everything else uses the typed value.
public enum QuantPoint: Hashable, Sendable, CustomStringConvertible {
    /// Per block j of stage i: LN1(h), the input of the query projection and the spatial reduction
    /// (and of keys and values when the stage has no reduction).
    case norm1(Int, Int)
    /// The query projection's output (int8 attention's query input).
    case query(Int, Int)
    /// LN(reduction(LN1(h))), the keys' and values' input, in stages with a reduction.
    case keyValueInput(Int, Int)
    /// The attention output, the output projection's input.
    case attention(Int, Int)
    /// LN2(h), the Mix-FFN's first dense layer's input.
    case norm2(Int, Int)
    /// The first dense layer's output, the depthwise convolution's input.
    case hidden(Int, Int)
    /// GELU(depthwise(...)), the second dense layer's input.
    case activation(Int, Int)
    /// Stage i's output after its closing LayerNorm: the decoder's input, and the next stage's.
    case stageOutput(Int)
    /// The decoder's fused features F.
    case fused
    /// concat[F_t, G_t], task t's combine conv's input.
    case taskConcat(Int)
    /// Z_t, task t's classifier's input.
    case taskCombined(Int)

    /// The key in a model file's `activations`.
    public var name: String {
        switch self {
        case let .norm1(i, j): "stage\(i).block\(j).norm1"
        case let .query(i, j): "stage\(i).block\(j).query"
        case let .keyValueInput(i, j): "stage\(i).block\(j).kv"
        case let .attention(i, j): "stage\(i).block\(j).attention"
        case let .norm2(i, j): "stage\(i).block\(j).norm2"
        case let .hidden(i, j): "stage\(i).block\(j).hidden"
        case let .activation(i, j): "stage\(i).block\(j).gelu"
        case let .stageOutput(i): "stage\(i).output"
        case .fused: "decoder.fused"
        case let .taskConcat(t): "task\(t).concat"
        case let .taskCombined(t): "task\(t).combined"
        }
    }

    public var description: String { name }

    /// The encoder stage the point belongs to; nil for the decoder's and the heads'.
    public var stage: Int? {
        switch self {
        case let .norm1(i, _), let .query(i, _), let .keyValueInput(i, _), let .attention(i, _), let .norm2(i, _),
             let .hidden(i, _), let .activation(i, _), let .stageOutput(i):
            i
        case .fused, .taskConcat, .taskCombined:
            nil
        }
    }

    /// Whether the point is a concatenation observed in two halves (`taskConcat`).
    public var isConcatenation: Bool {
        if case .taskConcat = self { return true }
        return false
    }

    /// Every point of a model, in network order.
    public static func all(for d: ModelDescription) -> [QuantPoint] {
        var points: [QuantPoint] = []
        for i in 0 ..< d.encoder.stageCount {
            for j in 0 ..< d.encoder.depths[i] {
                points += [.norm1(i, j), .query(i, j)]
                if d.encoder.srRatios[i] > 1 { points += [.keyValueInput(i, j)] }
                points += [.attention(i, j), .norm2(i, j), .hidden(i, j), .activation(i, j)]
            }
            points += [.stageOutput(i)]
        }
        points += [.fused]
        if d.tasks.count > 1 {
            for t in d.tasks.indices { points += [.taskConcat(t), .taskCombined(t)] }
        }
        return points
    }
}

/// Receives the fp32 engine's activations at every quantization point: to measure
/// them (calibration), or to change them in place (simulating quantization there).
public protocol ActivationObserver: AnyObject {
    /// `values` holds `rows` rows of `channels` values (channels last).
    func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int)
}
