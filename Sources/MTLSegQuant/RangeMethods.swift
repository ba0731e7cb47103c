#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// How an activation's u8 grid is chosen from what calibration saw.
public enum RangeMethod: Equatable, Sendable, CustomStringConvertible {
    /// The whole observed range.
    case minMax
    /// Clips the given share (e.g. 0.0001) of values off each end.
    case percentile(tail: Double)
    /// The clipping range whose quantization error (rounding inside, clipping
    /// outside), weighted by the observed histogram, is smallest.
    case mse
    /// The clipping range whose 256-level quantized distribution is closest to
    /// the observed one in Kullback-Leibler divergence (TensorRT's calibration).
    case entropy

    public var description: String {
        switch self {
        case .minMax: return "minmax"
        case let .percentile(tail): return "percentile(\(100 - tail * 100))"
        case .mse: return "mse"
        case .entropy: return "entropy"
        }
    }

    /// Whether the method needs histograms (a second pass over the images).
    var needsHistogram: Bool { self != .minMax }
}

/// A histogram of one activation over a fixed range.
public struct ActivationHistogram {
    public let lo: Float
    public let hi: Float
    public var counts: [UInt64]

    public init(lo: Float, hi: Float, bins: Int) {
        self.lo = lo
        self.hi = hi
        counts = [UInt64](repeating: 0, count: bins)
    }

    var binWidth: Double { Double(hi - lo) / Double(counts.count) }
    func center(_ bin: Int) -> Double { Double(lo) + (Double(bin) + 0.5) * binWidth }

    /// The grid the method chooses.
    public func grid(_ method: RangeMethod) -> QuantParamsChoice {
        switch method {
        case .minMax:
            return QuantParamsChoice(lo: lo, hi: hi)
        case let .percentile(tail):
            let total = counts.reduce(0, +)
            let cut = UInt64(Double(total) * tail)
            var seen: UInt64 = 0, first = 0
            while first < counts.count - 1 && seen + counts[first] <= cut { seen += counts[first]; first += 1 }
            seen = 0
            var last = counts.count - 1
            while last > first && seen + counts[last] <= cut { seen += counts[last]; last -= 1 }
            return QuantParamsChoice(lo: Float(Double(lo) + Double(first) * binWidth), hi: Float(Double(lo) + Double(last + 1) * binWidth))
        case .mse:
            return mseGrid()
        case .entropy:
            return entropyGrid()
        }
    }

    /// Searches clipping ranges whose ends fall on bin edges (every 8th edge),
    /// using prefix sums so each candidate's error costs O(1).
    private func mseGrid() -> QuantParamsChoice {
        let bins = counts.count
        var s0 = [Double](repeating: 0, count: bins + 1), s1 = s0, s2 = s0
        for b in 0 ..< bins {
            let c = Double(counts[b]), x = center(b)
            s0[b + 1] = s0[b] + c
            s1[b + 1] = s1[b] + c * x
            s2[b + 1] = s2[b] + c * x * x
        }
        func edge(_ i: Int) -> Double { Double(lo) + Double(i) * binWidth }
        // The grid always contains 0, so neither end may cross it.
        let zeroEdge = lo >= 0 ? 0 : (hi <= 0 ? bins : Int((Double(-lo) / binWidth).rounded(.down)))
        let stride = max(1, bins / 256)
        var best = (error: Double.infinity, lo: lo, hi: hi)
        for first in Swift.stride(from: 0, through: zeroEdge, by: stride) {
            let a = min(edge(first), 0)
            // Squared distance of the values below the range to its lower end.
            let below = a * a * s0[first] - 2 * a * s1[first] + s2[first]
            for last in Swift.stride(from: bins, through: zeroEdge, by: -stride) {
                let b = max(edge(last), 0)
                let above = (s2[bins] - s2[last]) - 2 * b * (s1[bins] - s1[last]) + b * b * (s0[bins] - s0[last])
                let step = max((b - a) / 255, 1e-12)
                let error = below + above + (s0[last] - s0[first]) * step * step / 12
                if error < best.error { best = (error, Float(a), Float(b)) }
            }
        }
        return QuantParamsChoice(lo: best.lo, hi: best.hi)
    }
}

extension ActivationHistogram {
    /// Ranges that keep 0 and clip the histogram's ends on a coarse grid of bin
    /// edges; for each, the observed counts inside are merged into 255 levels and
    /// spread back, the clipped mass added to the end bins, and the candidate with
    /// the smallest KL(observed ‖ quantized) wins.
    func entropyGrid() -> QuantParamsChoice {
        let bins = counts.count
        let zeroEdge = lo >= 0 ? 0 : (hi <= 0 ? bins : Int((Double(-lo) / binWidth).rounded(.down)))
        let stride = max(1, bins / 64)
        var best = (divergence: Double.infinity, first: 0, last: bins)
        for first in Swift.stride(from: 0, through: zeroEdge, by: stride) {
            for last in Swift.stride(from: bins, through: max(zeroEdge, first + 1), by: -stride) where last - first >= 256 || (first == 0 && last == bins) {
                let d = divergence(first: first, last: last)
                if d < best.divergence { best = (d, first, last) }
            }
        }
        func edge(_ i: Int) -> Float { Float(Double(lo) + Double(i) * binWidth) }
        return QuantParamsChoice(lo: min(edge(best.first), 0), hi: max(edge(best.last), 0))
    }

    private func divergence(first: Int, last: Int) -> Double {
        let total = Double(counts.reduce(0, +))
        guard total > 0 else { return 0 }
        // Reference: the observed distribution over [first, last), the clipped tails folded into the end bins.
        let inside = counts[first ..< last].map(Double.init)
        var p = inside
        p[0] += Double(counts[0 ..< first].reduce(0, +))
        p[p.count - 1] += Double(counts[last...].reduce(0, +))
        // Candidate: the values inside merged into 255 levels, each level's mass spread evenly over its non-empty bins.
        let levels = 255
        var q = [Double](repeating: 0, count: p.count)
        for level in 0 ..< levels {
            let start = level * p.count / levels, end = (level + 1) * p.count / levels
            guard end > start else { continue }
            let mass = inside[start ..< end].reduce(0, +)
            let occupied = inside[start ..< end].filter { $0 > 0 }.count
            guard occupied > 0 else { continue }
            for i in start ..< end where inside[i] > 0 { q[i] = mass / Double(occupied) }
        }
        // Both normalised over the candidate range; a bin the candidate leaves empty costs as if it held a trace.
        let qTotal = max(q.reduce(0, +), 1e-30)
        var kl = 0.0
        for i in p.indices where p[i] > 0 {
            kl += p[i] / total * log((p[i] / total) / max(q[i] / qTotal, 1e-12))
        }
        return kl
    }
}

/// A chosen clipping range, turned into a u8 grid.
public struct QuantParamsChoice: Equatable {
    public let lo: Float
    public let hi: Float
    public var params: QuantParams { QuantParams(min: lo, max: hi) }
}
