/// How a layer's weights are laid out in a model file, so they can be written back.
public enum LayerLayout: Equatable, Sendable {
    /// [out][in]
    case linear
    /// [out][in][1][1]
    case conv1x1
    /// [out][in][k][k] in the file; [out][k][k][in] in memory (see WeightReader.convKxK).
    case conv(kernel: Int, inChannels: Int)
}

/// A fully connected layer in PyTorch's layout: `weight` is [outFeatures][inFeatures].
/// Convolutions are stored here too once their kernels are flattened.
public struct LinearWeights {
    /// The tensor-name prefix in model files (`<name>.weight`, `<name>.bias`).
    public let name: String
    public let layout: LayerLayout
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: FloatBuffer
    public let bias: FloatBuffer?
    /// The int8 form, when the layer comes from (or has been made into) an int8 model.
    public let quantized: QuantizedTensor?

    public init(name: String, layout: LayerLayout, inFeatures: Int, outFeatures: Int, weight: FloatBuffer,
                bias: FloatBuffer?, quantized: QuantizedTensor? = nil) {
        self.name = name
        self.layout = layout
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
        self.quantized = quantized
    }

    public var parameterCount: Int { inFeatures * outFeatures + (bias?.count ?? 0) }

    /// False for an int8 layer loaded without its fp32 weights (for the int8 engine only).
    public var hasFloatWeights: Bool { weight.count == inFeatures * outFeatures }

    /// This layer with `shift` added to its bias (which it gains if it had none).
    public func addingToBias(_ shift: [Float]) -> LinearWeights {
        let bias = FloatBuffer(count: outFeatures)
        for o in 0 ..< outFeatures { bias[o] = (self.bias?[o] ?? 0) + shift[o] }
        return LinearWeights(name: name, layout: layout, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight, bias: bias,
                             quantized: quantized)
    }

    /// This layer with its weights quantized to int8 (symmetric, per output channel).
    public func quantizingWeights() -> LinearWeights {
        LinearWeights(name: name, layout: layout, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight, bias: bias,
                      quantized: QuantizedTensor(weights: weight.pointer, outFeatures: outFeatures, inFeatures: inFeatures))
    }
}

public struct LayerNormWeights {
    public let gamma: FloatBuffer
    public let beta: FloatBuffer

    public init(gamma: FloatBuffer, beta: FloatBuffer) {
        self.gamma = gamma
        self.beta = beta
    }
}

/// BatchNorm in eval mode as the affine map it is: y = x·scale + shift.
public struct BatchNormAffine {
    public let scale: [Float]
    public let shift: [Float]
}

/// Reads layers from a model source, checking each tensor's shape against the
/// description, and applies the load-time rewrites (layout changes, folds).
struct WeightReader {
    let source: ModelSource
    /// Whether int8 layers also get their dequantized fp32 weights (the fp32 engine needs them, the int8 engine does not).
    var dequantize = true

    /// In an int8 model file a layer's weight is I8 with a per-output-channel
    /// F32 `<name>.weight_scale`; the fp32 weight is its dequantized form.
    private func weight(_ prefix: String, shape: [Int]) throws -> (FloatBuffer, QuantizedTensor?) {
        let name = prefix + ".weight"
        guard source.dtype(of: name) == .I8 else { return (try source.tensor(name, shape: shape), nil) }
        let values = try source.int8Tensor(name, shape: shape)
        let scale = try source.tensor(prefix + ".weight_scale", shape: [shape[0]])
        let quantized = QuantizedTensor(values: values, scale: scale.array)
        let inFeatures = shape.dropFirst().reduce(1, *)
        return (dequantize ? quantized.dequantized(outFeatures: shape[0], inFeatures: inFeatures) : FloatBuffer(count: 0), quantized)
    }

    func linear(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws -> LinearWeights {
        let (w, q) = try weight(prefix, shape: [outFeatures, inFeatures])
        return LinearWeights(name: prefix, layout: .linear, inFeatures: inFeatures, outFeatures: outFeatures, weight: w,
                             bias: bias ? try source.tensor(prefix + ".bias", shape: [outFeatures]) : nil, quantized: q)
    }

    /// A 1×1 convolution, which is a linear layer over channels.
    func conv1x1(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool) throws -> LinearWeights {
        let (w, q) = try weight(prefix, shape: [outFeatures, inFeatures, 1, 1])
        return LinearWeights(name: prefix, layout: .conv1x1, inFeatures: inFeatures, outFeatures: outFeatures, weight: w,
                             bias: bias ? try source.tensor(prefix + ".bias", shape: [outFeatures]) : nil, quantized: q)
    }

    /// A k×k convolution repacked from [out][in][k][k] to [out][k][k][in], the
    /// order in which the channels-last patch gatherer lays out each patch.
    func convKxK(_ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int) throws -> LinearWeights {
        let (original, quantized) = try weight(prefix, shape: [outChannels, inChannels, kernel, kernel])
        let order = ConvLayout(outChannels: outChannels, inChannels: inChannels, kernel: kernel)
        let packed = FloatBuffer(count: original.count)
        if original.count > 0 { order.toPatchOrder(original.pointer, packed.pointer) }
        let packedQuantized = quantized.map { q -> QuantizedTensor in
            var values = [Int8](repeating: 0, count: q.values.count)
            q.values.withUnsafeBufferPointer { src in values.withUnsafeMutableBufferPointer { order.toPatchOrder(src.baseAddress!, $0.baseAddress!) } }
            return QuantizedTensor(values: values, scale: q.scale)
        }
        return LinearWeights(name: prefix, layout: .conv(kernel: kernel, inChannels: inChannels), inFeatures: kernel * kernel * inChannels,
                             outFeatures: outChannels, weight: packed, bias: try source.tensor(prefix + ".bias", shape: [outChannels]),
                             quantized: packedQuantized)
    }

    func layerNorm(_ prefix: String, channels: Int) throws -> LayerNormWeights {
        LayerNormWeights(gamma: try source.tensor(prefix + ".weight", shape: [channels]),
                         beta: try source.tensor(prefix + ".bias", shape: [channels]))
    }

    func batchNorm(_ prefix: String, channels: Int, eps: Float = 1e-5) throws -> BatchNormAffine {
        let gamma = try source.tensor(prefix + ".weight", shape: [channels])
        let beta = try source.tensor(prefix + ".bias", shape: [channels])
        let mean = try source.tensor(prefix + ".running_mean", shape: [channels])
        let variance = try source.tensor(prefix + ".running_var", shape: [channels])
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0 ..< channels {
            let s = Double(gamma[c]) / (Double(variance[c]) + Double(eps)).squareRoot()
            scale[c] = Float(s)
            shift[c] = Float(Double(beta[c]) - Double(mean[c]) * s)
        }
        return BatchNormAffine(scale: scale, shift: shift)
    }
}

/// PyTorch's conv weight order [out][in][k][k] and the patch order [out][k][k][in].
public struct ConvLayout {
    public let outChannels: Int
    public let inChannels: Int
    public let kernel: Int

    public init(outChannels: Int, inChannels: Int, kernel: Int) {
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.kernel = kernel
    }

    public func toPatchOrder<T>(_ source: UnsafePointer<T>, _ target: UnsafeMutablePointer<T>) {
        for o in 0 ..< outChannels {
            for c in 0 ..< inChannels {
                for ky in 0 ..< kernel {
                    for kx in 0 ..< kernel {
                        target[((o * kernel + ky) * kernel + kx) * inChannels + c] = source[((o * inChannels + c) * kernel + ky) * kernel + kx]
                    }
                }
            }
        }
    }

    public func toPyTorchOrder<T>(_ source: UnsafePointer<T>, _ target: UnsafeMutablePointer<T>) {
        for o in 0 ..< outChannels {
            for c in 0 ..< inChannels {
                for ky in 0 ..< kernel {
                    for kx in 0 ..< kernel {
                        target[((o * inChannels + c) * kernel + ky) * kernel + kx] = source[((o * kernel + ky) * kernel + kx) * inChannels + c]
                    }
                }
            }
        }
    }
}

extension LinearWeights {
    /// Folds a BatchNorm that follows this layer into its weights and bias:
    /// BN(Wx + b) = (scale·W)x + (scale·b + shift).
    func folding(_ norm: BatchNormAffine) -> LinearWeights {
        let weight = FloatBuffer(count: self.weight.count)
        let bias = FloatBuffer(count: outFeatures)
        for o in 0 ..< outFeatures {
            for i in 0 ..< inFeatures { weight[o * inFeatures + i] = self.weight[o * inFeatures + i] * norm.scale[o] }
            bias[o] = (self.bias?[o] ?? 0) * norm.scale[o] + norm.shift[o]
        }
        return LinearWeights(name: name, layout: layout, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight, bias: bias)
    }
}
