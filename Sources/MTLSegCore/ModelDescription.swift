#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The MiT encoder's shape: one entry per stage in every list.
public struct EncoderConfig: Codable, Equatable, Sendable {
    public var numChannels: Int
    public var hiddenSizes: [Int]
    public var depths: [Int]
    public var numAttentionHeads: [Int]
    public var srRatios: [Int]
    public var patchSizes: [Int]
    public var strides: [Int]
    public var mlpRatios: [Int]

    enum CodingKeys: String, CodingKey {
        case numChannels = "num_channels", hiddenSizes = "hidden_sizes", depths
        case numAttentionHeads = "num_attention_heads", srRatios = "sr_ratios"
        case patchSizes = "patch_sizes", strides, mlpRatios = "mlp_ratios"
    }

    public var stageCount: Int { hiddenSizes.count }

    /// The published MiT variants (HF's conversion script and NVlabs' mit_b*).
    public static func variant(_ name: String) -> EncoderConfig? {
        let small = [32, 64, 160, 256], wide = [64, 128, 320, 512]
        let depths: [String: ([Int], [Int])] = [
            "b0": (small, [2, 2, 2, 2]), "b1": (wide, [2, 2, 2, 2]), "b2": (wide, [3, 4, 6, 3]),
            "b3": (wide, [3, 4, 18, 3]), "b4": (wide, [3, 8, 27, 3]), "b5": (wide, [3, 6, 40, 3]),
        ]
        guard let (hidden, depth) = depths[name] else { return nil }
        return EncoderConfig(numChannels: 3, hiddenSizes: hidden, depths: depth, numAttentionHeads: [1, 2, 5, 8],
                             srRatios: [8, 4, 2, 1], patchSizes: [7, 3, 3, 3], strides: [4, 2, 2, 2], mlpRatios: [4, 4, 4, 4])
    }

    /// Names the variant this configuration equals, or "custom".
    public var variantName: String {
        for name in ["b0", "b1", "b2", "b3", "b4", "b5"] where EncoderConfig.variant(name) == self { return name }
        return "custom"
    }
}

/// One segmentation task: its name and classes, and the colours masks are drawn in.
public struct TaskDescription: Codable, Equatable, Sendable {
    public var name: String
    public var classes: [String]
    public var colors: [[Int]]?

    public init(name: String, classes: [String], colors: [[Int]]? = nil) {
        self.name = name
        self.classes = classes
        self.colors = colors
    }

    public var classCount: Int { classes.count }
}

public struct InputSize: Codable, Equatable, Sendable {
    /// The input sizes a model may declare or be run at, for each side (ModelDescription.validate; the tool's sizes).
    public static let sides: ClosedRange<Int> = 1 ... 16384

    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}

/// Everything about a model except its weights: what `__metadata__["mtlseg"]`
/// holds (calibration/MODEL_FORMAT.md).
public struct ModelDescription: Codable, Equatable, Sendable {
    public static let formatName = "mtlseg-model"
    public static let formatVersion = 1
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    public var format: String = ModelDescription.formatName
    public var formatVersion: Int = ModelDescription.formatVersion
    public var name: String
    public var variant: String
    public var encoder: EncoderConfig
    public var decoderHiddenSize: Int
    public var layerNormEps: Float
    public var tasks: [TaskDescription]
    public var input: InputSize?
    public var mean: [Float]
    public var std: [Float]

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", name, variant, encoder
        case decoderHiddenSize = "decoder_hidden_size", layerNormEps = "layer_norm_eps"
        case tasks, input, mean, std
    }

    public init(name: String, encoder: EncoderConfig, decoderHiddenSize: Int, tasks: [TaskDescription],
                input: InputSize? = nil, layerNormEps: Float = 1e-5,
                mean: [Float] = ModelDescription.imagenetMean, std: [Float] = ModelDescription.imagenetStd) {
        self.name = name
        self.variant = encoder.variantName
        self.encoder = encoder
        self.decoderHiddenSize = decoderHiddenSize
        self.layerNormEps = layerNormEps
        self.tasks = tasks
        self.input = input
        self.mean = mean
        self.std = std
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decodeIfPresent(String.self, forKey: .format) ?? ModelDescription.formatName
        formatVersion = try c.decodeIfPresent(Int.self, forKey: .formatVersion) ?? ModelDescription.formatVersion
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "unnamed"
        encoder = try c.decode(EncoderConfig.self, forKey: .encoder)
        variant = try c.decodeIfPresent(String.self, forKey: .variant) ?? encoder.variantName
        decoderHiddenSize = try c.decode(Int.self, forKey: .decoderHiddenSize)
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-5
        tasks = try c.decode([TaskDescription].self, forKey: .tasks)
        input = try c.decodeIfPresent(InputSize.self, forKey: .input)
        mean = try c.decodeIfPresent([Float].self, forKey: .mean) ?? ModelDescription.imagenetMean
        std = try c.decodeIfPresent([Float].self, forKey: .std) ?? ModelDescription.imagenetStd
    }

    /// Checks the description for values the engine cannot run, naming the field.
    public func validate(path: String) throws {
        func fail(_ field: String, _ reason: String) -> ModelError { .badMetadata(path: path, field: field, reason: reason) }
        guard format == ModelDescription.formatName else { throw fail("format", "'\(format)' is not '\(ModelDescription.formatName)'") }
        guard formatVersion == ModelDescription.formatVersion else {
            throw fail("format_version", "version \(formatVersion) is not supported (this build reads \(ModelDescription.formatVersion))")
        }
        let e = encoder
        let stages = e.hiddenSizes.count
        guard stages >= 1 else { throw fail("encoder.hidden_sizes", "no stages") }
        let lists: [(String, [Int])] = [("depths", e.depths), ("num_attention_heads", e.numAttentionHeads), ("sr_ratios", e.srRatios),
                                        ("patch_sizes", e.patchSizes), ("strides", e.strides), ("mlp_ratios", e.mlpRatios)]
        for (field, list) in lists {
            guard list.count == stages else { throw fail("encoder.\(field)", "has \(list.count) entries, hidden_sizes has \(stages)") }
            guard list.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw fail("encoder.\(field)", "values must be between 1 and 4096") }
        }
        guard e.hiddenSizes.allSatisfy({ $0 >= 1 && $0 <= 65536 }) else { throw fail("encoder.hidden_sizes", "values must be between 1 and 65536") }
        guard e.numChannels >= 1 && e.numChannels <= 64 else { throw fail("encoder.num_channels", "must be between 1 and 64") }
        for (i, heads) in e.numAttentionHeads.enumerated() where e.hiddenSizes[i] % heads != 0 {
            throw fail("encoder.num_attention_heads", "stage \(i): \(heads) heads do not divide \(e.hiddenSizes[i]) channels")
        }
        guard decoderHiddenSize >= 1 && decoderHiddenSize <= 65536 else { throw fail("decoder_hidden_size", "must be between 1 and 65536") }
        guard layerNormEps > 0 && layerNormEps < 1 else { throw fail("layer_norm_eps", "must be in (0, 1)") }
        guard !tasks.isEmpty else { throw fail("tasks", "no tasks") }
        guard Set(tasks.map(\.name)).count == tasks.count else { throw fail("tasks", "task names repeat") }
        for (t, task) in tasks.enumerated() {
            if let problem = TaskNameRules.problem(task.name) { throw fail("tasks[\(t)].name", problem) }
            guard (1 ... 255).contains(task.classes.count) else {
                throw fail("tasks[\(t)].classes", "\(task.classes.count) classes; masks are u8, so 1 to 255")
            }
            if let colors = task.colors {
                guard colors.count == task.classes.count else {
                    throw fail("tasks[\(t)].colors", "\(colors.count) colours for \(task.classes.count) classes")
                }
                guard colors.allSatisfy({ $0.count == 3 && $0.allSatisfy { (0 ... 255).contains($0) } }) else {
                    throw fail("tasks[\(t)].colors", "each colour must be [r, g, b] in 0...255")
                }
            }
        }
        if let input {
            guard InputSize.sides.contains(input.width), InputSize.sides.contains(input.height) else {
                throw fail("input", "size \(input.width)x\(input.height) is outside \(InputSize.sides)")
            }
        }
        guard mean.count == e.numChannels else { throw fail("mean", "\(mean.count) values for \(e.numChannels) channels") }
        guard std.count == e.numChannels, std.allSatisfy({ $0 > 0 }) else {
            throw fail("std", "needs \(e.numChannels) positive values")
        }
    }

    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(json: String, path: String) throws -> ModelDescription {
        do {
            return try JSONDecoder().decode(ModelDescription.self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw metadataError(error, decoding: ModelDescription.self, json: json, path: path)
        } catch {
            throw ModelError.badMetadata(path: path, field: "mtlseg", reason: "not valid JSON")
        }
    }

    /// A ModelError for a description or record whose decoding failed: a number an integer field cannot hold is named
    /// with its field (UnfitNumber), which Foundation's decoder does not do.
    static func metadataError<T: Decodable>(_ error: DecodingError, decoding type: T.Type, json: String, path: String, prefix: String = "") -> ModelError {
        if case let .dataCorrupted(context) = error, context.codingPath.isEmpty,
           let unfit = UnfitNumber.find(decoding: type, in: Data(json.utf8)) {
            return .badMetadata(path: path, field: prefix + field(path: unfit.codingPath), reason: "expected a whole number, found \(unfit.value)")
        }
        return .badMetadata(path: path, field: prefix + field(of: error), reason: reason(of: error))
    }

    static func field(of error: DecodingError) -> String {
        let path: [CodingKey]
        switch error {
        case let .keyNotFound(key, context): path = context.codingPath + [key]
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context): path = context.codingPath
        @unknown default: path = []
        }
        return field(path: path)
    }

    /// A coding path as errors name fields: `encoder.hidden_sizes[1]`; the whole description for none.
    static func field(path: [CodingKey]) -> String {
        if path.isEmpty { return "mtlseg" }
        return path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            .replacing(".[", with: "[").trimmingCharacters(where: { $0 == "." })
    }

    static func reason(of error: DecodingError) -> String {
        switch error {
        case .keyNotFound: return "missing"
        case let .typeMismatch(type, _): return "expected \(type)"
        case .valueNotFound: return "null where a value is required"
        case let .dataCorrupted(context): return context.codingPath.isEmpty ? "not valid JSON" : context.debugDescription
        @unknown default: return "invalid"
        }
    }
}
