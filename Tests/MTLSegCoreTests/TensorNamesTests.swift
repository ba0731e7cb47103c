import XCTest
@testable import MTLSegCore

final class TensorNamesTests: XCTestCase {
    func testTransformers5NamesMapToTransformers4() {
        let pairs = [
            ("segformer.stages.0.patch_embeddings.proj.weight", "segformer.encoder.patch_embeddings.0.proj.weight"),
            ("segformer.stages.3.patch_embeddings.layer_norm.bias", "segformer.encoder.patch_embeddings.3.layer_norm.bias"),
            ("segformer.stages.1.blocks.12.layernorm_before.weight", "segformer.encoder.block.1.12.layer_norm_1.weight"),
            ("segformer.stages.1.blocks.0.layernorm_after.bias", "segformer.encoder.block.1.0.layer_norm_2.bias"),
            ("segformer.stages.2.blocks.1.attention.q_proj.weight", "segformer.encoder.block.2.1.attention.self.query.weight"),
            ("segformer.stages.2.blocks.1.attention.k_proj.bias", "segformer.encoder.block.2.1.attention.self.key.bias"),
            ("segformer.stages.2.blocks.1.attention.v_proj.weight", "segformer.encoder.block.2.1.attention.self.value.weight"),
            ("segformer.stages.2.blocks.1.attention.o_proj.weight", "segformer.encoder.block.2.1.attention.output.dense.weight"),
            ("segformer.stages.0.blocks.0.attention.sequence_reduction.sequence_reduction.weight",
             "segformer.encoder.block.0.0.attention.self.sr.weight"),
            ("segformer.stages.0.blocks.0.attention.sequence_reduction.layer_norm.bias",
             "segformer.encoder.block.0.0.attention.self.layer_norm.bias"),
            ("segformer.stages.3.blocks.1.mlp.fc1.weight", "segformer.encoder.block.3.1.mlp.dense1.weight"),
            ("segformer.stages.3.blocks.1.mlp.fc2.bias", "segformer.encoder.block.3.1.mlp.dense2.bias"),
            ("segformer.stages.3.blocks.1.mlp.dwconv.dwconv.weight", "segformer.encoder.block.3.1.mlp.dwconv.dwconv.weight"),
            ("segformer.stages.2.layer_norm.weight", "segformer.encoder.layer_norm.2.weight"),
            ("decode_head.linear_projections.3.proj.weight", "decode_head.linear_c.3.proj.weight"),
        ]
        for (new, old) in pairs {
            XCTAssertEqual(TensorNames.canonical(new), old)
            XCTAssertEqual(TensorNames.canonical(old), old, "transformers 4 names stay as they are")
        }
        for unchanged in ["decode_head.linear_fuse.weight", "decode_head.batch_norm.num_batches_tracked",
                          "mtl_head.gate.0.1.weight", "segformer.stages.x.layer_norm.weight"] {
            XCTAssertEqual(TensorNames.canonical(unchanged), unchanged)
        }
    }
}
