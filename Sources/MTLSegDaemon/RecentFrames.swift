#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The last few hundred frames' times and latencies, for rates and percentiles
/// that describe now — not an average since start, which would hide a stall.
final class RecentFrames: @unchecked Sendable {
    private let lock = Lock()
    private var times: [UInt64]
    private var latencies: [[UInt32]]
    private var next = 0
    private var filled = 0

    init(capacity: Int = 512) {
        times = [UInt64](repeating: 0, count: capacity)
        latencies = [[UInt32]](repeating: [], count: capacity)
    }

    func record(at time: UInt64, latencies frame: [UInt32] = []) {
        lock.lock()
        times[next] = time
        latencies[next] = frame
        next = (next + 1) % times.count
        filled = min(filled + 1, times.count)
        lock.unlock()
    }

    /// Frames per second over the last `window` seconds before `now` (0 when none came).
    func rate(now: UInt64, window: Double = 2) -> Double {
        lock.lock()
        defer { lock.unlock() }
        let since = now &- UInt64(window * 1e9)
        let count = times.prefix(filled).filter { $0 > since && $0 <= now }.count
        return Double(count) / window
    }

    /// Per latency index: the 50th, 90th and 99th percentiles in milliseconds over the recorded frames.
    func percentiles() -> [[Double]] {
        lock.lock()
        let frames = Array(latencies.prefix(filled)).filter { !$0.isEmpty }
        lock.unlock()
        guard let width = frames.first?.count else { return [] }
        return (0 ..< width).map { index in
            let sorted = frames.compactMap { $0.count > index ? Double($0[index]) / 1000 : nil }.sorted()
            return [0.5, 0.9, 0.99].map { sorted[min(sorted.count - 1, Int(Double(sorted.count) * $0))] }
        }
    }
}
