/// The weights of one MiT encoder stage: an overlapping patch embedding,
/// transformer blocks, and the LayerNorm that closes the stage.
public struct StageWeights {
    public let channels: Int
    public let heads: Int
    public let srRatio: Int
    public let patchSize: Int
    public let stride: Int
    public let patchEmbedding: LinearWeights
    public let patchNorm: LayerNormWeights
    public let blocks: [BlockWeights]
    public let norm: LayerNormWeights
}

/// One pre-norm transformer block: efficient self-attention, then Mix-FFN.
public struct BlockWeights {
    public let norm1: LayerNormWeights
    public let query: LinearWeights
    public let key: LinearWeights
    public let value: LinearWeights
    /// Spatial reduction (a conv with kernel = stride = sr ratio) and its LayerNorm; nil when the ratio is 1.
    public let reduction: LinearWeights?
    public let reductionNorm: LayerNormWeights?
    public let output: LinearWeights
    public let norm2: LayerNormWeights
    public let dense1: LinearWeights
    /// Depthwise 3×3: [9][hidden] weights (tap-major) and [hidden] bias.
    public let depthwiseWeight: FloatBuffer
    public let depthwiseBias: FloatBuffer
    public let dense2: LinearWeights
}

/// The all-MLP decoder after the load-time fold (Sources/ARCHITECTURE.md, "Decoder"): each stage's
/// `linear_c` and its slice of `linear_fuse` (with the BatchNorm) become one
/// D×C_i map applied at the stage's own resolution, because both are per-pixel
/// linear maps and bilinear upsampling commutes with them. The biases, which
/// upsampling leaves unchanged, sum into one.
public struct FusedDecoderWeights {
    /// Names of the folded tensors in int8 model files.
    public static func projectionName(_ stage: Int) -> String { "decode_head.fused.\(stage)" }
    public static let biasName = "decode_head.fused.bias"

    public let width: Int
    /// Per stage: [D][C_i], no bias.
    public let stageProjections: [LinearWeights]
    public let bias: FloatBuffer
}

/// Task t's head (Sources/ARCHITECTURE.md, "Task heads"), BatchNorms folded into the convs.
public struct TaskHeadWeights {
    public struct Gate {
        /// The other task j whose map this gate weighs.
        public let otherTask: Int
        /// Weights over F_t and over F_j ([D] each), and the bias.
        public let selfWeight: FloatBuffer
        public let otherWeight: FloatBuffer
        public let bias: Float
    }

    public let taskMap: LinearWeights
    public let gates: [Gate]
    /// [D][2D] over concat[F_t, G_t].
    public let combine: LinearWeights
    public let classifier: LinearWeights
}

/// Every weight of an MTLSegFormer (a plain SegFormer when it has one task), as the fp32 engine uses them.
public struct MTLSegFormerWeights {
    public let description: ModelDescription
    public let stages: [StageWeights]
    public let decoder: FusedDecoderWeights
    /// Single-task models: the decode head's classifier. Multi-task: nil.
    public let classifier: LinearWeights?
    /// Multi-task models: one head per task. Single-task: empty.
    public let heads: [TaskHeadWeights]
    /// Parameters as stored in the file (before the folds), for reports.
    public let parameterCount: Int

    /// Reads and checks every weight. `floatWeights: false` skips the fp32 form of
    /// int8 layers, which only the fp32 engine uses, to save memory.
    public init(source: ModelSource, floatWeights: Bool = true) throws {
        let d = source.description
        let reader = WeightReader(source: source, dequantize: floatWeights)
        let e = d.encoder
        var parameters = 0
        func count(_ layer: LinearWeights) -> LinearWeights { parameters += layer.parameterCount; return layer }
        func count(_ norm: LayerNormWeights) -> LayerNormWeights { parameters += 2 * norm.gamma.count; return norm }

        var stages: [StageWeights] = []
        for i in 0 ..< e.stageCount {
            let channels = e.hiddenSizes[i]
            let inChannels = i == 0 ? e.numChannels : e.hiddenSizes[i - 1]
            let hidden = channels * e.mlpRatios[i]
            let embed = "segformer.encoder.patch_embeddings.\(i)"
            var blocks: [BlockWeights] = []
            for j in 0 ..< e.depths[i] {
                let p = "segformer.encoder.block.\(i).\(j)"
                let sr = e.srRatios[i]
                let dwWeight = try source.tensor(p + ".mlp.dwconv.dwconv.weight", shape: [hidden, 1, 3, 3]).transposed(rows: hidden, columns: 9)
                let dwBias = try source.tensor(p + ".mlp.dwconv.dwconv.bias", shape: [hidden])
                parameters += dwWeight.count + dwBias.count
                blocks.append(BlockWeights(
                    norm1: count(try reader.layerNorm(p + ".layer_norm_1", channels: channels)),
                    query: count(try reader.linear(p + ".attention.self.query", in: channels, out: channels)),
                    key: count(try reader.linear(p + ".attention.self.key", in: channels, out: channels)),
                    value: count(try reader.linear(p + ".attention.self.value", in: channels, out: channels)),
                    reduction: sr > 1 ? count(try reader.convKxK(p + ".attention.self.sr", in: channels, out: channels, kernel: sr)) : nil,
                    reductionNorm: sr > 1 ? count(try reader.layerNorm(p + ".attention.self.layer_norm", channels: channels)) : nil,
                    output: count(try reader.linear(p + ".attention.output.dense", in: channels, out: channels)),
                    norm2: count(try reader.layerNorm(p + ".layer_norm_2", channels: channels)),
                    dense1: count(try reader.linear(p + ".mlp.dense1", in: channels, out: hidden)),
                    depthwiseWeight: dwWeight, depthwiseBias: dwBias,
                    dense2: count(try reader.linear(p + ".mlp.dense2", in: hidden, out: channels))))
            }
            stages.append(StageWeights(
                channels: channels, heads: e.numAttentionHeads[i], srRatio: e.srRatios[i],
                patchSize: e.patchSizes[i], stride: e.strides[i],
                patchEmbedding: count(try reader.convKxK(embed + ".proj", in: inChannels, out: channels, kernel: e.patchSizes[i])),
                patchNorm: count(try reader.layerNorm(embed + ".layer_norm", channels: channels)),
                blocks: blocks,
                norm: count(try reader.layerNorm("segformer.encoder.layer_norm.\(i)", channels: channels))))
        }

        let width = d.decoderHiddenSize
        let folded = source.quantization != nil
        let decoder: FusedDecoderWeights
        if folded {
            // Int8 files hold the decoder as the engine runs it: already folded.
            let projections = try (0 ..< e.stageCount).map {
                count(try reader.linear(FusedDecoderWeights.projectionName($0), in: e.hiddenSizes[$0], out: width, bias: false))
            }
            let bias = try source.tensor(FusedDecoderWeights.biasName, shape: [width])
            parameters += width
            decoder = FusedDecoderWeights(width: width, stageProjections: projections, bias: bias)
        } else {
            let linearC = try (0 ..< e.stageCount).map {
                count(try reader.linear("decode_head.linear_c.\($0).proj", in: e.hiddenSizes[$0], out: width))
            }
            let fuse = count(try reader.conv1x1("decode_head.linear_fuse", in: width * e.stageCount, out: width, bias: false))
            let fuseNorm = try reader.batchNorm("decode_head.batch_norm", channels: width)
            parameters += 2 * width
            decoder = Self.foldDecoder(linearC: linearC, fuse: fuse, norm: fuseNorm, width: width)
        }

        var classifier: LinearWeights?
        var heads: [TaskHeadWeights] = []
        if d.tasks.count == 1 {
            classifier = count(try reader.conv1x1("decode_head.classifier", in: width, out: d.tasks[0].classCount, bias: true))
        } else {
            for (t, task) in d.tasks.enumerated() {
                // Int8 files hold the task and combine convs with their BatchNorms folded in (and a bias).
                func convBN(_ conv: String, _ norm: String, in inFeatures: Int) throws -> LinearWeights {
                    if folded { return count(try reader.conv1x1(conv, in: inFeatures, out: width, bias: true)) }
                    let layer = count(try reader.conv1x1(conv, in: inFeatures, out: width, bias: false))
                    parameters += 2 * width
                    return layer.folding(try reader.batchNorm(norm, channels: width))
                }
                let taskMap = try convBN("mtl_head.task.\(t).conv", "mtl_head.task.\(t).bn", in: width)
                var gates: [TaskHeadWeights.Gate] = []
                for j in d.tasks.indices where j != t {
                    let gate = count(try reader.conv1x1("mtl_head.gate.\(t).\(j)", in: 2 * width, out: 1, bias: true))
                    gates.append(TaskHeadWeights.Gate(
                        otherTask: j,
                        selfWeight: FloatBuffer(Array(UnsafeBufferPointer(start: gate.weight.pointer, count: width))),
                        otherWeight: FloatBuffer(Array(UnsafeBufferPointer(start: gate.weight.pointer + width, count: width))),
                        bias: gate.bias![0]))
                }
                let combine = try convBN("mtl_head.combine.\(t).conv", "mtl_head.combine.\(t).bn", in: 2 * width)
                heads.append(TaskHeadWeights(
                    taskMap: taskMap, gates: gates, combine: combine,
                    classifier: count(try reader.conv1x1("mtl_head.classifier.\(t)", in: width, out: task.classCount, bias: true))))
            }
        }
        self.description = d
        self.stages = stages
        self.decoder = decoder
        self.classifier = classifier
        self.heads = heads
        self.parameterCount = parameters
    }

    init(description: ModelDescription, stages: [StageWeights], decoder: FusedDecoderWeights, classifier: LinearWeights?,
         heads: [TaskHeadWeights], parameterCount: Int) {
        self.description = description
        self.stages = stages
        self.decoder = decoder
        self.classifier = classifier
        self.heads = heads
        self.parameterCount = parameterCount
    }

    /// The same weights under another description (e.g. with an input size recorded).
    public func replacingDescription(_ description: ModelDescription) -> MTLSegFormerWeights {
        MTLSegFormerWeights(description: description, stages: stages, decoder: decoder, classifier: classifier, heads: heads,
                            parameterCount: parameterCount)
    }

    /// Each int8 layer with the quantization point of its input (`QuantPoint`).
    public var int8LayerInputs: [(layer: LinearWeights, input: QuantPoint)] {
        var pairs: [(LinearWeights, QuantPoint)] = []
        for (i, stage) in stages.enumerated() {
            if int8EmbeddingStages.contains(i) { pairs.append((stage.patchEmbedding, QuantPoint.stageOutput(i - 1))) }
            for (j, b) in stage.blocks.enumerated() {
                let kv = b.reduction == nil ? QuantPoint.norm1(i, j) : QuantPoint.keyValueInput(i, j)
                pairs.append((b.query, QuantPoint.norm1(i, j)))
                if let reduction = b.reduction { pairs.append((reduction, QuantPoint.norm1(i, j))) }
                pairs += [(b.key, kv), (b.value, kv), (b.output, QuantPoint.attention(i, j)), (b.dense1, QuantPoint.norm2(i, j)),
                          (b.dense2, QuantPoint.activation(i, j))]
            }
        }
        for (i, projection) in decoder.stageProjections.enumerated() { pairs.append((projection, QuantPoint.stageOutput(i))) }
        if let classifier { pairs.append((classifier, QuantPoint.fused)) }
        for (t, head) in heads.enumerated() {
            pairs += [(head.taskMap, QuantPoint.fused), (head.combine, QuantPoint.taskConcat(t)), (head.classifier, QuantPoint.taskCombined(t))]
        }
        return pairs
    }

    /// The layers the int8 engine runs as int8 products, in network order (all but the patch embeddings
    /// outside `int8EmbeddingStages`).
    public var int8Layers: [LinearWeights] { int8LayerInputs.map(\.layer) }

    /// The stages whose overlapping patch embedding is an int8 layer: the last one only.
    ///
    /// The others keep fp32 weights (7 % of b0's executed MACs at 512²); the int8
    /// engine runs them as 16-bit integer convolutions where the CPU has VNNI
    /// (`Int16Embedding`), else in fp32. Each embedding starts a stage's residual stream, which
    /// every block of the stage builds on, so its errors travel furthest. On the b0
    /// anchor (`calibration/compare_with_peers.sh`, argmax agreement with fp32 on its
    /// 8 eval images), quantizing stage 4's embedding cost 0.05 points (99.27 → 99.22 %)
    /// and saved its fp32 convolution (94 M MACs, about 0.7 ms of 20 on one thread);
    /// stage 3's cost 0.17 points more and stage 2's 0.14 more, which would leave
    /// less than 0.1 point above the 99.0 % this project holds int8 to.
    public var int8EmbeddingStages: Range<Int> { max(1, stages.count - 1) ..< stages.count }

    /// These weights with every int8 layer's weights quantized (symmetric int8 per output channel).
    public func quantizingWeights() -> MTLSegFormerWeights {
        let floatEmbeddings = Set(stages.indices.filter { !int8EmbeddingStages.contains($0) }.map { stages[$0].patchEmbedding.name })
        return mappingLayers { floatEmbeddings.contains($0.name) ? $0 : $0.quantizingWeights() }
    }

    /// These weights with `transform` applied to every layer that has a weight
    /// matrix (all but the gates), in network order, the first convolution first.
    public func mappingLayers(_ transform: (LinearWeights) -> LinearWeights) -> MTLSegFormerWeights {
        let q = transform
        let stages = self.stages.map { s in
            StageWeights(channels: s.channels, heads: s.heads, srRatio: s.srRatio, patchSize: s.patchSize, stride: s.stride,
                         patchEmbedding: q(s.patchEmbedding), patchNorm: s.patchNorm,
                         blocks: s.blocks.map { b in
                             BlockWeights(norm1: b.norm1, query: q(b.query), key: q(b.key), value: q(b.value), reduction: b.reduction.map(q),
                                          reductionNorm: b.reductionNorm, output: q(b.output), norm2: b.norm2, dense1: q(b.dense1),
                                          depthwiseWeight: b.depthwiseWeight, depthwiseBias: b.depthwiseBias, dense2: q(b.dense2))
                         },
                         norm: s.norm)
        }
        return MTLSegFormerWeights(
            description: description, stages: stages,
            decoder: FusedDecoderWeights(width: decoder.width, stageProjections: decoder.stageProjections.map(q), bias: decoder.bias),
            classifier: classifier.map(q),
            heads: heads.map { TaskHeadWeights(taskMap: q($0.taskMap), gates: $0.gates, combine: q($0.combine), classifier: q($0.classifier)) },
            parameterCount: parameterCount)
    }

    /// The same weights with every stage's closing LayerNorm and the folded decoder's bias replaced (by
    /// `stageNorm(i, norm)` and `decoderBias(bias)`): with `mappingLayers`, what a rewrite that rescales those
    /// activations channel by channel needs.
    public func replacing(stageNorm: (Int, LayerNormWeights) -> LayerNormWeights,
                          decoderBias: (FloatBuffer) -> FloatBuffer) -> MTLSegFormerWeights {
        let stages = self.stages.enumerated().map { i, s in
            StageWeights(channels: s.channels, heads: s.heads, srRatio: s.srRatio, patchSize: s.patchSize, stride: s.stride,
                         patchEmbedding: s.patchEmbedding, patchNorm: s.patchNorm, blocks: s.blocks, norm: stageNorm(i, s.norm))
        }
        return MTLSegFormerWeights(
            description: description, stages: stages,
            decoder: FusedDecoderWeights(width: decoder.width, stageProjections: decoder.stageProjections, bias: decoderBias(decoder.bias)),
            classifier: classifier, heads: heads, parameterCount: parameterCount)
    }

    /// W'_i = scale ⊙ (W_fuse[:, slice_i] · W_c_i);  b' = scale ⊙ Σ_i W_fuse[:, slice_i] · b_i + shift.
    /// linear_fuse sees the stages concatenated last stage first, so stage i owns slice S−1−i.
    static func foldDecoder(linearC: [LinearWeights], fuse: LinearWeights, norm: BatchNormAffine, width: Int) -> FusedDecoderWeights {
        let stageCount = linearC.count
        var bias = [Double](repeating: 0, count: width)
        var projections: [LinearWeights] = []
        for (i, c) in linearC.enumerated() {
            let slice = (stageCount - 1 - i) * width
            let folded = FloatBuffer(count: width * c.inFeatures)
            for o in 0 ..< width {
                let fuseRow = fuse.weight.pointer + o * fuse.inFeatures + slice
                var row = [Double](repeating: 0, count: c.inFeatures)
                var biasSum = 0.0
                for k in 0 ..< width {
                    let f = Double(fuseRow[k])
                    if f == 0 { continue }
                    let cRow = c.weight.pointer + k * c.inFeatures
                    for m in 0 ..< c.inFeatures { row[m] += f * Double(cRow[m]) }
                    biasSum += f * Double(c.bias?[k] ?? 0)
                }
                for m in 0 ..< c.inFeatures { folded[o * c.inFeatures + m] = Float(row[m] * Double(norm.scale[o])) }
                bias[o] += biasSum
            }
            projections.append(LinearWeights(name: FusedDecoderWeights.projectionName(i), layout: .linear, inFeatures: c.inFeatures,
                                             outFeatures: width, weight: folded, bias: nil))
        }
        let foldedBias = FloatBuffer((0 ..< width).map { Float(bias[$0] * Double(norm.scale[$0]) + Double(norm.shift[$0])) })
        return FusedDecoderWeights(width: width, stageProjections: projections, bias: foldedBias)
    }
}
