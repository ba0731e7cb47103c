#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// A model on disk, opened and validated: its description and its tensors under
/// the transformers 4 names. Either an mtlseg model file or an HF checkpoint
/// directory (config.json + model.safetensors).
public struct ModelSource {
    /// What the user named: the file, or the checkpoint directory.
    public let path: String
    public let description: ModelDescription
    public let file: SafeTensorsFile
    /// Present in int8 model files.
    public let quantization: QuantizationRecord?
    /// Values that are legal but suspicious (see WeightValueCheck), one line each, naming the tensor.
    public let warnings: [String]
    private let entries: [String: SafeTensorsEntry]

    /// The metadata key that holds the model description.
    public static let metadataKey = "mtlseg"

    public init(path: String) throws {
        guard let isDirectory = Path.isDirectory(path) else {
            throw ModelError.unreadable(path: path, reason: "no such file or directory")
        }
        if isDirectory {
            let configPath = Path.appending(path, "config.json")
            let weightsPath = Path.appending(path, "model.safetensors")
            // A folder is read as an HF checkpoint; one that holds no config.json is most likely not meant as one.
            guard Path.isDirectory(configPath) != nil else {
                throw ModelError.unreadable(path: path, reason: "a folder without config.json: name a model file (.safetensors), "
                    + "or an HF checkpoint folder (config.json + model.safetensors, as save_pretrained writes)")
            }
            var description = try HFConfig.description(configPath: configPath, name: Path.lastComponent(path))
            let preprocessorPath = Path.appending(path, "preprocessor_config.json")
            if Path.isDirectory(preprocessorPath) != nil {
                (description.mean, description.std) = try HFConfig.normalization(preprocessorPath: preprocessorPath,
                                                                                 default: (description.mean, description.std))
            }
            try self.init(path: path, description: description, file: try SafeTensorsFile(path: weightsPath))
        } else {
            let file = try SafeTensorsFile(path: path)
            guard let json = file.metadata[Self.metadataKey] else {
                throw ModelError.badMetadata(path: path, field: Self.metadataKey,
                                             reason: "missing from __metadata__ (not an mtlseg model file; an HF checkpoint is loaded by its directory)")
            }
            try self.init(path: path, description: try ModelDescription.decode(json: json, path: path), file: file)
        }
    }

    /// An mtlseg model file already in memory (`name` stands for its path in errors).
    public init(bytes: Data, name: String) throws {
        let file = try SafeTensorsFile(bytes: bytes, path: name)
        guard let json = file.metadata[Self.metadataKey] else {
            throw ModelError.badMetadata(path: name, field: Self.metadataKey, reason: "missing from __metadata__")
        }
        try self.init(path: name, description: try ModelDescription.decode(json: json, path: name), file: file)
    }

    init(path: String, description: ModelDescription, file: SafeTensorsFile) throws {
        try description.validate(path: path)
        var entries: [String: SafeTensorsEntry] = [:]
        var original: [String: String] = [:]
        for entry in file.entries {
            let name = TensorNames.canonical(entry.name)
            if let first = original[name] {
                throw ModelError.badTensorEntry(path: file.path, tensor: entry.name, reason: "names the same tensor as '\(first)'")
            }
            original[name] = entry.name
            entries[name] = entry
        }
        if let json = file.metadata[QuantizationRecord.metadataKey] {
            do {
                quantization = try JSONDecoder().decode(QuantizationRecord.self, from: Data(json.utf8))
            } catch let error as DecodingError {
                throw ModelDescription.metadataError(error, decoding: QuantizationRecord.self, json: json, path: path,
                                                     prefix: QuantizationRecord.metadataKey + ".")
            }
            for (point, params) in quantization!.activations where !(params.scale > 0 && params.scale.isNormal) || !(0 ... 255).contains(params.zeroPoint) {
                throw ModelError.badMetadata(path: path, field: "\(QuantizationRecord.metadataKey).activations.\(point)",
                                             reason: "scale \(params.scale) must be a positive normal number and zero_point \(params.zeroPoint) in 0...255")
            }
            // What the int8 engine will need, checked here so that `inspect` finds a broken record too, naming the file.
            _ = try quantization!.grids(for: description, path: path)
            for stage in quantization!.wideDecoderInputs ?? [] where !(1 ..< description.encoder.stageCount).contains(stage) {
                throw ModelError.badMetadata(path: path, field: "\(QuantizationRecord.metadataKey).wide_decoder_inputs",
                                             reason: "stage \(stage) is not one of stages 1..<\(description.encoder.stageCount)")
            }
        } else {
            quantization = nil
        }
        warnings = try WeightValueCheck.check(file)
        self.path = path
        self.description = description
        self.file = file
        self.entries = entries
    }

    /// The named tensor (transformers 4 name) as fp32, checked against the shape the description implies.
    public func tensor(_ name: String, shape: [Int]) throws -> FloatBuffer {
        guard let entry = entries[name] else { throw ModelError.missingTensor(path: file.path, tensor: name) }
        guard entry.shape == shape else {
            throw ModelError.wrongShape(path: file.path, tensor: entry.name, expected: shape, found: entry.shape)
        }
        return try file.floats(entry)
    }

    public func has(_ name: String) -> Bool { entries[name] != nil }

    public func dtype(of name: String) -> SafeTensorsDType? { entries[name]?.dtype }

    /// An I8 tensor (int8 weights), checked against the expected shape.
    public func int8Tensor(_ name: String, shape: [Int]) throws -> [Int8] {
        guard let entry = entries[name] else { throw ModelError.missingTensor(path: file.path, tensor: name) }
        guard entry.shape == shape else {
            throw ModelError.wrongShape(path: file.path, tensor: entry.name, expected: shape, found: entry.shape)
        }
        guard entry.dtype == .I8 else {
            throw ModelError.wrongDType(path: file.path, tensor: entry.name, expected: "I8", found: entry.dtype.rawValue)
        }
        return file.rawBytes(entry).withUnsafeBytes { Array($0.bindMemory(to: Int8.self)) }
    }
}

/// Reads HF's `config.json` for SegFormer into a model description.
enum HFConfig {
    /// The checkpoint's own normalisation from its `preprocessor_config.json` (`image_mean`, `image_std`), as
    /// calibration/export.py takes it; `fallback` (ImageNet's) for what it does not give. The values are checked
    /// with the rest of the description (one per channel, std > 0).
    static func normalization(preprocessorPath: String, default fallback: (mean: [Float], std: [Float])) throws -> (mean: [Float], std: [Float]) {
        let config = try jsonObject(at: preprocessorPath, named: "preprocessor_config.json")
        func floats(_ key: String) throws -> [Float]? {
            guard let value = config[key] else { return nil }
            let list = value as? [Any] ?? []
            let numbers = list.compactMap { JSONObject.double($0) }.filter(\.isFinite)
            guard value is [Any], numbers.count == list.count, !numbers.isEmpty else {
                throw ModelError.badMetadata(path: preprocessorPath, field: key, reason: "not a list of numbers")
            }
            return numbers.map(Float.init)
        }
        return (try floats("image_mean") ?? fallback.mean, try floats("image_std") ?? fallback.std)
    }

    /// A checkpoint's JSON file (`config.json`, `preprocessor_config.json`) as an object, read only from a regular file.
    private static func jsonObject(at path: String, named name: String) throws -> [String: Any] {
        try RegularFile.check(path)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ModelError.unreadable(path: path, reason: "cannot read it (\(errorReason(error)))")
        }
        guard let object = (try? JSONObject.parse(data)) as? [String: Any] else {
            throw ModelError.badMetadata(path: path, field: name, reason: "not a JSON object")
        }
        return object
    }

    static func description(configPath: String, name: String) throws -> ModelDescription {
        let config = try jsonObject(at: configPath, named: "config.json")
        if let type = config["model_type"] as? String, type != "segformer" {
            throw ModelError.badMetadata(path: configPath, field: "model_type", reason: "'\(type)' is not 'segformer'")
        }
        // Only exact integers of a sane size are taken: a double outside Int (1e30) must not reach Int().
        func exactInt(_ value: Any) -> Int? {
            guard let double = JSONObject.double(value), double.isFinite, double == double.rounded(), abs(double) <= 1e15 else { return nil }
            return Int(exactly: double)
        }
        func ints(_ key: String, default fallback: [Int]? = nil) throws -> [Int] {
            guard let value = config[key] else {
                if let fallback { return fallback }
                throw ModelError.badMetadata(path: configPath, field: key, reason: "missing")
            }
            let list = value as? [Any] ?? []
            let numbers = list.compactMap(exactInt)
            guard value is [Any], numbers.count == list.count else {
                throw ModelError.badMetadata(path: configPath, field: key, reason: "not a list of integers")
            }
            return numbers
        }
        func int(_ key: String, default fallback: Int) throws -> Int {
            guard let value = config[key] else { return fallback }
            guard let number = exactInt(value) else {
                throw ModelError.badMetadata(path: configPath, field: key, reason: "not an integer (or not one of a sane size)")
            }
            return number
        }
        let encoder = EncoderConfig(
            numChannels: try int("num_channels", default: 3),
            hiddenSizes: try ints("hidden_sizes"),
            depths: try ints("depths"),
            numAttentionHeads: try ints("num_attention_heads"),
            srRatios: try ints("sr_ratios"),
            patchSizes: try ints("patch_sizes", default: [7, 3, 3, 3]),
            strides: try ints("strides", default: [4, 2, 2, 2]),
            mlpRatios: try ints("mlp_ratios", default: [4, 4, 4, 4]))
        var classes: [String]
        if let labels = config["id2label"] as? [String: Any] {
            guard (1 ... 255).contains(labels.count) else {
                throw ModelError.badMetadata(path: configPath, field: "id2label", reason: "\(labels.count) classes; masks are u8, so 1 to 255")
            }
            let indexed = try labels.map { key, value -> (Int, String) in
                guard let index = Int(key), let label = value as? String else {
                    throw ModelError.badMetadata(path: configPath, field: "id2label.\(key)", reason: "expected an integer key and a string label")
                }
                return (index, label)
            }.sorted { $0.0 < $1.0 }
            guard indexed.map(\.0) == Array(0 ..< indexed.count) else {
                throw ModelError.badMetadata(path: configPath, field: "id2label", reason: "keys are not 0..<\(indexed.count)")
            }
            classes = indexed.map(\.1)
        } else {
            // Checked here, before the labels are made: a negative count cannot make a range, a huge one exhausts memory.
            let count = try int("num_labels", default: 2)
            guard (1 ... 255).contains(count) else {
                throw ModelError.badMetadata(path: configPath, field: "num_labels", reason: "\(count) classes; masks are u8, so 1 to 255")
            }
            classes = (0 ..< count).map { "LABEL_\($0)" }
        }
        // HF builds every LayerNorm with PyTorch's default eps whatever config.layer_norm_eps says.
        return ModelDescription(name: name, encoder: encoder, decoderHiddenSize: try int("decoder_hidden_size", default: 256),
                                tasks: [TaskDescription(name: "segmentation", classes: classes)], input: nil, layerNormEps: 1e-5)
    }
}
