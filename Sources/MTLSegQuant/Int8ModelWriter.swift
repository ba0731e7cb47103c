#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore
import MTLSegEssentials

/// Writes an int8 model file (calibration/MODEL_FORMAT.md, "int8 models"): the
/// network in the form the int8 engine runs it — decoder folded, BatchNorms
/// folded into the head convs — with I8 weights, per-output-channel F32
/// `<name>.weight_scale`, F32 biases, norms and depthwise convs, and the
/// activation grids and calibration record in the metadata.
public enum Int8ModelWriter {
    public static func serialize(_ model: QuantizedModel) throws -> Data {
        let w = model.weights
        let d = w.description
        var writer = SafeTensorsWriter()
        writer.metadata[ModelSource.metadataKey] = d.jsonString()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        writer.metadata[QuantizationRecord.metadataKey] = String(decoding: try encoder.encode(model.record), as: UTF8.self)

        func norm(_ prefix: String, _ n: LayerNormWeights) {
            writer.add(prefix + ".weight", shape: [n.gamma.count], floats: n.gamma.array)
            writer.add(prefix + ".bias", shape: [n.beta.count], floats: n.beta.array)
        }
        /// A layer as I8 weights with scales, or as F32 weights where it stays fp32.
        func layer(_ layer: LinearWeights) {
            let shape: [Int]
            var order: ConvLayout?
            switch layer.layout {
            case .linear: shape = [layer.outFeatures, layer.inFeatures]
            case .conv1x1: shape = [layer.outFeatures, layer.inFeatures, 1, 1]
            case let .conv(kernel, inChannels):
                shape = [layer.outFeatures, inChannels, kernel, kernel]
                order = ConvLayout(outChannels: layer.outFeatures, inChannels: inChannels, kernel: kernel)
            }
            if let q = layer.quantized {
                var values = q.values
                if let order {
                    q.values.withUnsafeBufferPointer { source in
                        values.withUnsafeMutableBufferPointer { order.toPyTorchOrder(source.baseAddress!, $0.baseAddress!) }
                    }
                }
                writer.add(layer.name + ".weight", shape: shape, int8s: values)
                writer.add(layer.name + ".weight_scale", shape: [layer.outFeatures], floats: q.scale)
            } else {
                var values = layer.weight.array
                if let order {
                    layer.weight.array.withUnsafeBufferPointer { source in
                        values.withUnsafeMutableBufferPointer { order.toPyTorchOrder(source.baseAddress!, $0.baseAddress!) }
                    }
                }
                writer.add(layer.name + ".weight", shape: shape, floats: values)
            }
            if let bias = layer.bias { writer.add(layer.name + ".bias", shape: [layer.outFeatures], floats: bias.array) }
        }
        let int8 = layer

        for (i, stage) in w.stages.enumerated() {
            int8(stage.patchEmbedding)
            norm("segformer.encoder.patch_embeddings.\(i).layer_norm", stage.patchNorm)
            for (j, block) in stage.blocks.enumerated() {
                let p = "segformer.encoder.block.\(i).\(j)"
                norm(p + ".layer_norm_1", block.norm1)
                [block.query, block.key, block.value, block.output, block.dense1, block.dense2].forEach(int8)
                if let reduction = block.reduction, let reductionNorm = block.reductionNorm {
                    int8(reduction)
                    norm(p + ".attention.self.layer_norm", reductionNorm)
                }
                norm(p + ".layer_norm_2", block.norm2)
                let hidden = block.dense1.outFeatures
                // The engine keeps depthwise weights tap-major; files hold PyTorch's [C, 1, 3, 3].
                writer.add(p + ".mlp.dwconv.dwconv.weight", shape: [hidden, 1, 3, 3],
                           floats: block.depthwiseWeight.transposed(rows: 9, columns: hidden).array)
                writer.add(p + ".mlp.dwconv.dwconv.bias", shape: [hidden], floats: block.depthwiseBias.array)
            }
            norm("segformer.encoder.layer_norm.\(i)", stage.norm)
        }
        w.decoder.stageProjections.forEach(int8)
        writer.add(FusedDecoderWeights.biasName, shape: [w.decoder.width], floats: w.decoder.bias.array)
        if let classifier = w.classifier { int8(classifier) }
        let width = w.decoder.width
        for (t, head) in w.heads.enumerated() {
            int8(head.taskMap)
            for gate in head.gates {
                writer.add("mtl_head.gate.\(t).\(gate.otherTask).weight", shape: [1, 2 * width, 1, 1],
                           floats: gate.selfWeight.array + gate.otherWeight.array)
                writer.add("mtl_head.gate.\(t).\(gate.otherTask).bias", shape: [1], floats: [gate.bias])
            }
            int8(head.combine)
            int8(head.classifier)
        }
        return writer.serialized()
    }

    public static func write(_ model: QuantizedModel, to path: String) throws {
        try FileReplacement.replace(path, with: serialize(model))
    }
}
