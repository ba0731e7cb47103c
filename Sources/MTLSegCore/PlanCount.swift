/// The arithmetic a forward pass's sizes are worked out in (`ForwardSizes`): `Int` for an engine,
/// whose sizes are real, and `SaturatingCount` for the memory estimate of a model file not trusted
/// yet, where a hostile header's absurd sizes must come out over every budget instead of trapping.
protocol PlanCount: Comparable {
    init(_ value: Int)
    static func + (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    static func / (a: Self, b: Self) -> Self
    /// a − b.
    func minus(_ b: Self) -> Self
}

extension Int: PlanCount {
    func minus(_ b: Int) -> Int { self - b }
}

/// A non-negative count whose products and sums saturate at Int.max (past every budget) instead of trapping.
struct SaturatingCount: PlanCount, Sendable {
    let value: Int

    init(_ value: Int) { self.value = max(value, 0) }

    static func + (a: SaturatingCount, b: SaturatingCount) -> SaturatingCount {
        let (sum, overflow) = a.value.addingReportingOverflow(b.value)
        return SaturatingCount(overflow ? .max : sum)
    }

    static func * (a: SaturatingCount, b: SaturatingCount) -> SaturatingCount {
        let (product, overflow) = a.value.multipliedReportingOverflow(by: b.value)
        return SaturatingCount(overflow ? .max : product)
    }

    /// Integer division (by at least 1); a saturated count stays saturated.
    static func / (a: SaturatingCount, b: SaturatingCount) -> SaturatingCount { a.value == .max ? a : SaturatingCount(a.value / max(b.value, 1)) }

    /// a − b, floored at zero; a saturated count stays saturated.
    func minus(_ b: SaturatingCount) -> SaturatingCount { value == .max ? self : SaturatingCount(value - b.value) }

    static func < (a: SaturatingCount, b: SaturatingCount) -> Bool { a.value < b.value }
}
