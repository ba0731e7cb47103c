/// Picking the supported size and rate nearest to what was asked for; pure, so tests can sweep it.
enum FormatNegotiation {
    /// The offered size closest to `width`×`height` (by |Δwidth| + |Δheight|, then area), or the
    /// request itself clamped and aligned to a stepwise range; nil when the device did not say.
    static func nearestSize(to width: Int, _ height: Int, in sizes: FrameSizes) -> (width: Int, height: Int)? {
        switch sizes {
        case let .discrete(options):
            func cost(_ s: (width: Int, height: Int)) -> (Int, Int) {
                (abs(s.width - width) + abs(s.height - height), abs(s.width * s.height - width * height))
            }
            return options.min { cost($0) < cost($1) }
        case let .stepwise(minW, maxW, stepW, minH, maxH, stepH):
            func fit(_ value: Int, _ low: Int, _ high: Int, _ step: Int) -> Int {
                let clamped = min(max(value, low), high)
                return low + ((clamped - low + step / 2) / step) * step
            }
            return (min(fit(width, minW, maxW, stepW), maxW), min(fit(height, minH, maxH, stepH), maxH))
        case .unknown:
            return nil
        }
    }

    /// The offered interval whose rate is closest to `fps`, or 1/fps clamped to a stepwise range.
    static func nearestInterval(toFPS fps: Double, in intervals: FrameIntervals) -> FrameInterval? {
        let wanted = FrameInterval(numerator: 1000, denominator: UInt32(max(1, (fps * 1000).rounded())))
        switch intervals {
        case let .discrete(options):
            return options.filter { $0.numerator > 0 }.min { abs($0.framesPerSecond - fps) < abs($1.framesPerSecond - fps) }
        case let .stepwise(low, high, _):
            // A shorter interval is a higher rate: clamp the rate between the slowest and the fastest.
            let rate = min(max(fps, high.framesPerSecond), low.framesPerSecond)
            return rate == fps ? wanted : (rate == low.framesPerSecond ? low : high)
        case .unknown:
            return wanted
        }
    }
}
