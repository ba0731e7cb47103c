import CKernels
import MTLSegCore

/// Records the smallest and largest value seen at every quantization point:
/// memory is two floats per point, however many images pass.
public final class MinMaxObserver: ActivationObserver {
    public private(set) var ranges: [QuantPoint: (min: Float, max: Float)] = [:]
    /// Per point, the sum of each channel over all rows seen, and the rows seen
    /// (for points observed with one channel count; see `channelMeans`).
    private var channelSums: [QuantPoint: [Double]] = [:]
    private var rowCounts: [QuantPoint: Int] = [:]

    public init() {}

    public func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        let count = rows * channels
        var lo: Float = 0, hi: Float = 0
        ck_min_max_f32(values, count, &lo, &hi)
        if let seen = ranges[point] {
            ranges[point] = (Swift.min(seen.min, lo), Swift.max(seen.max, hi))
        } else {
            ranges[point] = (lo, hi)
        }
        var sums = channelSums.removeValue(forKey: point) ?? [Double](repeating: 0, count: channels)
        guard sums.count == channels else { return }
        sums.withUnsafeMutableBufferPointer { ck_column_sums_f32(values, rows, channels, $0.baseAddress!) }
        channelSums[point] = sums
        rowCounts[point, default: 0] += rows
    }

    /// The u8 grid of every point.
    public func quantParams() -> [QuantPoint: QuantParams] {
        ranges.mapValues { QuantParams(min: $0.min, max: $0.max) }
    }

    /// The mean of every channel at every point. (A point observed twice per
    /// image with the same channel count, such as a concatenation's two halves,
    /// gets the mean over both.)
    public func channelMeans() -> [QuantPoint: [Float]] {
        var means: [QuantPoint: [Float]] = [:]
        for (point, sums) in channelSums {
            let rows = Double(max(rowCounts[point] ?? 1, 1))
            means[point] = sums.map { Float($0 / rows) }
        }
        return means
    }
}

/// Histograms every quantization point over a range fixed beforehand (the
/// min/max of a first pass): memory is `bins` counters per point, however many
/// images pass.
public final class HistogramObserver: ActivationObserver {
    public private(set) var histograms: [QuantPoint: ActivationHistogram]

    public init(ranges: [QuantPoint: (min: Float, max: Float)], bins: Int = 2048) {
        histograms = ranges.mapValues { ActivationHistogram(lo: $0.min, hi: Swift.max($0.max, $0.min + 1e-12), bins: bins) }
    }

    public func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        let count = rows * channels
        guard var histogram = histograms[point] else { return }
        histograms[point] = nil  // keep the counts uniquely referenced while they are updated
        histogram.counts.withUnsafeMutableBufferPointer {
            ck_histogram_f32(values, count, histogram.lo, histogram.hi, $0.count, $0.baseAddress!)
        }
        histograms[point] = histogram
    }
}
