import CKernels
import MTLSegCore

/// Records the smallest and largest value seen at every quantization point:
/// memory is two floats per point, however many images pass.
public final class MinMaxObserver: ActivationObserver {
    public private(set) var ranges: [String: (min: Float, max: Float)] = [:]

    public init() {}

    public func observe(_ point: String, values: UnsafeMutablePointer<Float>, count: Int) {
        var lo: Float = 0, hi: Float = 0
        ck_min_max_f32(values, count, &lo, &hi)
        if let seen = ranges[point] {
            ranges[point] = (Swift.min(seen.min, lo), Swift.max(seen.max, hi))
        } else {
            ranges[point] = (lo, hi)
        }
    }

    /// The u8 grid of every point.
    public func quantParams() -> [String: QuantParams] {
        ranges.mapValues { QuantParams(min: $0.min, max: $0.max) }
    }
}
