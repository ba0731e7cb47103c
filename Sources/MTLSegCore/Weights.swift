/// A fully connected layer in PyTorch's layout: `weight` is [outFeatures][inFeatures].
/// Convolutions are stored here too once their kernels are flattened.
public struct LinearWeights {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: FloatBuffer
    public let bias: FloatBuffer?

    public var parameterCount: Int { inFeatures * outFeatures + (bias?.count ?? 0) }
}

public struct LayerNormWeights {
    public let gamma: FloatBuffer
    public let beta: FloatBuffer
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

    func linear(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws -> LinearWeights {
        LinearWeights(inFeatures: inFeatures, outFeatures: outFeatures,
                      weight: try source.tensor(prefix + ".weight", shape: [outFeatures, inFeatures]),
                      bias: bias ? try source.tensor(prefix + ".bias", shape: [outFeatures]) : nil)
    }

    /// A 1×1 convolution, which is a linear layer over channels.
    func conv1x1(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool) throws -> LinearWeights {
        let weight = try source.tensor(prefix + ".weight", shape: [outFeatures, inFeatures, 1, 1])
        return LinearWeights(inFeatures: inFeatures, outFeatures: outFeatures, weight: weight,
                             bias: bias ? try source.tensor(prefix + ".bias", shape: [outFeatures]) : nil)
    }

    /// A k×k convolution repacked from [out][in][k][k] to [out][k][k][in], the
    /// order in which the channels-last patch gatherer lays out each patch.
    func convKxK(_ prefix: String, in inChannels: Int, out outChannels: Int, kernel: Int) throws -> LinearWeights {
        let original = try source.tensor(prefix + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        let packed = FloatBuffer(count: original.count)
        for o in 0 ..< outChannels {
            for c in 0 ..< inChannels {
                for ky in 0 ..< kernel {
                    for kx in 0 ..< kernel {
                        packed[((o * kernel + ky) * kernel + kx) * inChannels + c] = original[((o * inChannels + c) * kernel + ky) * kernel + kx]
                    }
                }
            }
        }
        return LinearWeights(inFeatures: kernel * kernel * inChannels, outFeatures: outChannels, weight: packed,
                             bias: try source.tensor(prefix + ".bias", shape: [outChannels]))
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
        return LinearWeights(inFeatures: inFeatures, outFeatures: outFeatures, weight: weight, bias: bias)
    }
}
