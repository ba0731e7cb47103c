#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Cumulative latency histograms per pipeline stage since start, for Prometheus.
final class LatencyHistograms: @unchecked Sendable {
    /// Bucket upper bounds in seconds.
    static let bounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]

    private let lock = Lock()
    private var counts: [[UInt64]]
    private var sums: [Double]
    private var totals: [UInt64]

    init(stages: Int) {
        counts = [[UInt64]](repeating: [UInt64](repeating: 0, count: Self.bounds.count), count: stages)
        sums = [Double](repeating: 0, count: stages)
        totals = [UInt64](repeating: 0, count: stages)
    }

    func record(microseconds: [UInt32]) {
        lock.lock()
        defer { lock.unlock() }
        for (stage, value) in microseconds.enumerated() where stage < counts.count {
            let seconds = Double(value) / 1e6
            for (bucket, bound) in Self.bounds.enumerated() where seconds <= bound { counts[stage][bucket] += 1 }
            sums[stage] += seconds
            totals[stage] += 1
        }
    }

    /// (cumulative bucket counts, sum, count) per stage.
    var snapshot: [(buckets: [UInt64], sum: Double, count: UInt64)] {
        lock.lock()
        defer { lock.unlock() }
        return counts.indices.map { (counts[$0], sums[$0], totals[$0]) }
    }
}
