import CKernels
import MTLSegCore

/// Rounds the activations at chosen points onto their u8 grids, in place, so the
/// fp32 engine shows what quantizing exactly there costs.
public final class FakeQuantObserver: ActivationObserver {
    public let grids: [String: QuantParams]
    public var enabled: Set<String>

    public init(grids: [String: QuantParams], enabled: Set<String>) {
        self.grids = grids
        self.enabled = enabled
    }

    public func observe(_ point: String, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        let count = rows * channels
        guard enabled.contains(point), let grid = grids[point] else { return }
        ck_fake_quantize_f32(values, count, grid.scale, grid.zeroPoint)
    }
}

/// Argmax agreement with the fp32 model when only one activation point is quantized, per point.
public struct ActivationSensitivity {
    public struct Entry {
        public let point: String
        /// Per task, the share of pixels whose class is unchanged.
        public let agreement: [Double]
    }

    /// `inputs` are normalised images at width×height.
    public static func measure(weights: MTLSegFormerWeights, grids: [String: QuantParams], inputs: [FloatBuffer],
                               width: Int, height: Int, points: [String]) -> [Entry] {
        let engine = FP32Engine(weights: weights, height: height, width: width)
        let reference = inputs.map { input -> [SegmentationMask] in
            engine.run(input: input.pointer)
            return engine.logits.map { SegmentationMask(logits: $0) }
        }
        let observer = FakeQuantObserver(grids: grids, enabled: [])
        engine.observer = observer
        return points.map { point in
            observer.enabled = [point]
            var agreeing = [Int](repeating: 0, count: engine.logits.count), total = agreeing
            for (input, masks) in zip(inputs, reference) {
                engine.run(input: input.pointer)
                for t in engine.logits.indices {
                    let mask = SegmentationMask(logits: engine.logits[t])
                    agreeing[t] += zip(mask.classes, masks[t].classes).filter { $0 == $1 }.count
                    total[t] += mask.classes.count
                }
            }
            return Entry(point: point, agreement: zip(agreeing, total).map { Double($0) / Double(max($1, 1)) })
        }
    }
}

/// Argmax agreement with the fp32 model when only one layer's weights are int8, per layer.
public enum WeightSensitivity {
    public static func measure(weights: MTLSegFormerWeights, inputs: [FloatBuffer], width: Int, height: Int) -> [ActivationSensitivity.Entry] {
        let reference = FP32Engine(weights: weights, height: height, width: width)
        let masks = inputs.map { input -> [SegmentationMask] in
            reference.run(input: input.pointer)
            return reference.logits.map { SegmentationMask(logits: $0) }
        }
        return weights.int8Layers.map { layer in
            let engine = FP32Engine(weights: weights.mappingLayers { $0.name == layer.name ? $0.withDequantizedWeights() : $0 },
                                    height: height, width: width)
            var agreeing = [Int](repeating: 0, count: masks[0].count), total = agreeing
            for (input, expected) in zip(inputs, masks) {
                engine.run(input: input.pointer)
                for t in engine.logits.indices {
                    let mask = SegmentationMask(logits: engine.logits[t])
                    agreeing[t] += zip(mask.classes, expected[t].classes).filter { $0 == $1 }.count
                    total[t] += mask.classes.count
                }
            }
            return ActivationSensitivity.Entry(point: "weights " + layer.name, agreement: zip(agreeing, total).map { Double($0) / Double(max($1, 1)) })
        }
    }
}
