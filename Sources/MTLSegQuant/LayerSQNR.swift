import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// Per int8 layer, the signal-to-quantization-noise ratio of its output when its
/// input activations and its weights are both quantized, measured on calibration
/// data: SQNR = Σ y² / Σ (y − y_q)², in dB. Low means the layer loses a lot.
public final class LayerSQNRObserver: ActivationObserver {
    /// How a layer reads its input point.
    private struct Consumer {
        let layer: LinearWeights
        let dequantized: FloatBuffer
        /// nil: the point's rows are the layer's input rows; else a conv gathering k×k patches of an h×w map.
        let patches: Patches?
        /// Input made of two observations of the point, concatenated (the head's combine conv).
        let concatenated: Bool
    }

    /// A convolution's view of its input map: k×k patches at a stride, zero-padded, into an output map.
    private struct Patches {
        let kernel, stride, padding: Int
        let input, output: MapSize
    }

    private let grids: [QuantPoint: QuantParams]
    private var consumers: [QuantPoint: [Consumer]] = [:]
    private var pendingHalf: [QuantPoint: [Float]] = [:]
    private var signal: [String: Double] = [:]
    private var noise: [String: Double] = [:]
    /// Rows sampled per observation (evenly spaced), bounding the cost.
    private let sampleRows = 256

    /// `weights` must carry int8 forms of the layers to measure; `plan` gives the map sizes convs need.
    public init(weights: MTLSegFormerWeights, grids: [QuantPoint: QuantParams], plan: ForwardPlan) {
        self.grids = grids
        for (layer, point) in weights.int8LayerInputs {
            guard let q = layer.quantized else { continue }
            var patches: Patches?
            if case let .conv(kernel, _) = layer.layout, let stage = point.stage {
                let map = plan.stageSizes[stage]
                if point == .stageOutput(stage), stage + 1 < weights.stages.count {
                    // The next stage's overlapping patch embedding.
                    patches = Patches(kernel: kernel, stride: weights.stages[stage + 1].stride, padding: kernel / 2, input: map,
                                      output: plan.stageSizes[stage + 1])
                } else {
                    // A reduction (sr) conv: patches side by side.
                    patches = Patches(kernel: kernel, stride: kernel, padding: 0, input: map,
                                      output: MapSize(height: map.height / kernel, width: map.width / kernel))
                }
            }
            consumers[point, default: []].append(Consumer(layer: layer, dequantized: q.dequantizedBuffer(outFeatures: layer.outFeatures, inFeatures: layer.inFeatures),
                                                          patches: patches, concatenated: point.isConcatenation))
        }
    }

    public func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        guard let list = consumers[point], let grid = grids[point] else { return }
        var input = Array(UnsafeBufferPointer(start: values, count: rows * channels))
        var inputChannels = channels
        if list.contains(where: \.concatenated) {
            // The first observation is F_t, the second G_t: the conv reads [F_t, G_t] per pixel.
            guard let first = pendingHalf.removeValue(forKey: point) else {
                pendingHalf[point] = input
                return
            }
            var joined = [Float](repeating: 0, count: rows * 2 * channels)
            for r in 0 ..< rows {
                for c in 0 ..< channels {
                    joined[r * 2 * channels + c] = first[r * channels + c]
                    joined[r * 2 * channels + channels + c] = input[r * channels + c]
                }
            }
            input = joined
            inputChannels = 2 * channels
        }
        var rounded = input
        rounded.withUnsafeMutableBufferPointer { ck_fake_quantize_f32($0.baseAddress!, $0.count, grid.scale, grid.zeroPoint) }
        for consumer in list { measure(consumer, exact: input, rounded: rounded, rows: rows, channels: inputChannels) }
    }

    private func measure(_ consumer: Consumer, exact: [Float], rounded: [Float], rows: Int, channels: Int) {
        let layer = consumer.layer
        var x = exact, xq = rounded, count = rows
        if let p = consumer.patches {
            count = p.output.pixels
            x = [Float](repeating: 0, count: count * layer.inFeatures)
            xq = x
            exact.withUnsafeBufferPointer { src in
                x.withUnsafeMutableBufferPointer {
                    ck_im2col_hwc_f32(src.baseAddress!, p.input.height, p.input.width, channels, p.kernel, p.stride, p.padding,
                                      p.output.height, p.output.width, $0.baseAddress!, 0, p.output.height)
                }
            }
            rounded.withUnsafeBufferPointer { src in
                xq.withUnsafeMutableBufferPointer {
                    ck_im2col_hwc_f32(src.baseAddress!, p.input.height, p.input.width, channels, p.kernel, p.stride, p.padding,
                                      p.output.height, p.output.width, $0.baseAddress!, 0, p.output.height)
                }
            }
        }
        guard count > 0 else { return }
        let k = layer.inFeatures, n = layer.outFeatures
        let sampled = min(count, sampleRows)
        var a = [Float](repeating: 0, count: sampled * k), aq = a
        for s in 0 ..< sampled {
            let r = s * count / sampled
            for j in 0 ..< k {
                a[s * k + j] = x[r * k + j]
                aq[s * k + j] = xq[r * k + j]
            }
        }
        var y = [Float](repeating: 0, count: sampled * n), yq = y
        layer.weight.pointer.withMemoryRebound(to: Float.self, capacity: n * k) { w in
            matmul(a, sampled, k, w, n, &y)
        }
        matmul(aq, sampled, k, consumer.dequantized.pointer, n, &yq)
        var s = 0.0, e = 0.0
        for i in y.indices {
            s += Double(y[i]) * Double(y[i])
            let d = Double(y[i] - yq[i])
            e += d * d
        }
        signal[layer.name, default: 0] += s
        noise[layer.name, default: 0] += e
    }

    private func matmul(_ a: [Float], _ m: Int, _ k: Int, _ w: UnsafePointer<Float>, _ n: Int, _ out: inout [Float]) {
        a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { op in
                ck_matmul_transposed_f32(ap.baseAddress!, m, k, w, n, op.baseAddress!)
            }
        }
    }

    /// SQNR in dB per layer name (∞ when no noise was seen).
    public var sqnr: [String: Double] {
        var result: [String: Double] = [:]
        for (name, s) in signal {
            let e = noise[name] ?? 0
            result[name] = e > 0 ? 10 * log10(max(s, 1e-30) / e) : .infinity
        }
        return result
    }
}

extension QuantizedTensor {
    func dequantizedBuffer(outFeatures: Int, inFeatures: Int) -> FloatBuffer {
        let out = FloatBuffer(count: values.count)
        for o in 0 ..< outFeatures {
            for i in 0 ..< inFeatures { out[o * inFeatures + i] = Float(values[o * inFeatures + i]) * scale[o] }
        }
        return out
    }
}
