#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// HF SegFormer tensor names come in two generations: published checkpoints
/// use the transformers 4 names, transformers ≥ 5 writes new ones. mtlseg
/// works with the transformers 4 names and renames the newer ones on load
/// (the table in calibration/MODEL_FORMAT.md).
public enum TensorNames {
    /// Ordered (pattern, replacement) pairs; `{i}`/`{j}` stand for indices.
    private static let renames: [(String, String)] = [
        ("segformer.stages.{i}.patch_embeddings.", "segformer.encoder.patch_embeddings.{i}."),
        ("segformer.stages.{i}.blocks.{j}.layernorm_before.", "segformer.encoder.block.{i}.{j}.layer_norm_1."),
        ("segformer.stages.{i}.blocks.{j}.layernorm_after.", "segformer.encoder.block.{i}.{j}.layer_norm_2."),
        ("segformer.stages.{i}.blocks.{j}.attention.q_proj.", "segformer.encoder.block.{i}.{j}.attention.self.query."),
        ("segformer.stages.{i}.blocks.{j}.attention.k_proj.", "segformer.encoder.block.{i}.{j}.attention.self.key."),
        ("segformer.stages.{i}.blocks.{j}.attention.v_proj.", "segformer.encoder.block.{i}.{j}.attention.self.value."),
        ("segformer.stages.{i}.blocks.{j}.attention.o_proj.", "segformer.encoder.block.{i}.{j}.attention.output.dense."),
        ("segformer.stages.{i}.blocks.{j}.attention.sequence_reduction.sequence_reduction.",
         "segformer.encoder.block.{i}.{j}.attention.self.sr."),
        ("segformer.stages.{i}.blocks.{j}.attention.sequence_reduction.layer_norm.",
         "segformer.encoder.block.{i}.{j}.attention.self.layer_norm."),
        ("segformer.stages.{i}.blocks.{j}.mlp.fc1.", "segformer.encoder.block.{i}.{j}.mlp.dense1."),
        ("segformer.stages.{i}.blocks.{j}.mlp.fc2.", "segformer.encoder.block.{i}.{j}.mlp.dense2."),
        ("segformer.stages.{i}.blocks.{j}.mlp.dwconv.", "segformer.encoder.block.{i}.{j}.mlp.dwconv."),
        ("segformer.stages.{i}.layer_norm.", "segformer.encoder.layer_norm.{i}."),
        ("decode_head.linear_projections.{i}.", "decode_head.linear_c.{i}."),
    ]

    /// The transformers 4 name for `name`; names already in that form come back unchanged.
    public static func canonical(_ name: String) -> String {
        for (pattern, replacement) in renames {
            if let rest = match(name, pattern: pattern, replacement: replacement) { return rest }
        }
        return name
    }

    /// Matches `pattern` as a prefix of `name`, binding `{i}` and `{j}` to decimal
    /// indices, and returns the name rewritten with `replacement`.
    private static func match(_ name: String, pattern: String, replacement: String) -> String? {
        var bindings: [String: Substring] = [:]
        var rest = Substring(name)
        var template = Substring(pattern)
        while !template.isEmpty {
            if template.hasPrefix("{i}") || template.hasPrefix("{j}") {
                let key = String(template.prefix(3))
                let digits = rest.prefix(while: \.isNumber)
                guard !digits.isEmpty else { return nil }
                bindings[key] = digits
                rest = rest.dropFirst(digits.count)
                template = template.dropFirst(3)
            } else {
                guard rest.first == template.first else { return nil }
                rest = rest.dropFirst()
                template = template.dropFirst()
            }
        }
        var out = replacement
        for (key, value) in bindings { out = out.replacing(key, with: value) }
        return out + rest
    }
}
