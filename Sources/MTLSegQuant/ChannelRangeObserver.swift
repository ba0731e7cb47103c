import MTLSegCore

/// The largest |value| of every channel at chosen quantization points: what per-channel smoothing balances.
/// Memory is one float per channel, however many images pass.
public final class ChannelRangeObserver: ActivationObserver {
    private let points: Set<QuantPoint>
    public private(set) var largest: [QuantPoint: [Float]] = [:]

    public init(points: Set<QuantPoint>) {
        self.points = points
    }

    public func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        guard points.contains(point) else { return }
        var seen = largest.removeValue(forKey: point) ?? [Float](repeating: 0, count: channels)
        guard seen.count == channels else { return }
        for r in 0 ..< rows {
            let row = values + r * channels
            for c in 0 ..< channels { seen[c] = max(seen[c], abs(row[c])) }
        }
        largest[point] = seen
    }
}
