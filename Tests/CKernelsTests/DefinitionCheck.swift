import Foundation
import MTLSegEssentials
import XCTest

// What the definition tests share: the judging of a kernel's outputs against an operation's
// mathematical definition evaluated in double precision, and the seeded inputs.

/// The unit roundoff of float: one correctly rounded float operation errs by at most ε·|result|.
let floatRoundoff = 0x1p-24

/// Judges quantized outputs against the definition q = clamp(round_half_even(t) + zero_point),
/// t = x·inv_scale evaluated in double from the operation's definition. A kernel computes t in
/// float, within `slack` of the true value (the caller derives it per output from the kernel's
/// float steps); where t lies within that slack of a rounding boundary (k + ½), either neighbour
/// is a correct answer, everywhere else exactly the definition's byte is. The outputs near a
/// boundary are counted, and must stay a small fraction, so that a loose slack cannot hide a
/// wrong kernel.
struct QuantizedOutputCheck {
    let label: String
    let low: Int, high: Int
    private(set) var checked = 0, nearBoundary = 0, offByOne = 0, clampedCount = 0
    private(set) var failures: [String] = []

    init(_ label: String, low: Int = 0, high: Int = 255) {
        self.label = label
        self.low = low
        self.high = high
    }

    mutating func check(_ got: Int, unrounded t: Double, zeroPoint: Int = 0, slack: Double,
                        at place: @autoclosure () -> String) {
        checked += 1
        func clamp(_ v: Double) -> Int { Int(min(max(v, Double(low)), Double(high))) }
        let below = t.rounded(.down)
        let near = abs(t - below - 0.5) <= slack
        if near { nearBoundary += 1 }
        let unclamped = t.rounded(.toNearestOrEven) + Double(zeroPoint)
        if unclamped < Double(low) || unclamped > Double(high) { clampedCount += 1 }
        let expected = clamp(unclamped)
        if got == expected { return }
        if near, got == clamp(below + Double(zeroPoint)) || got == clamp(below + 1 + Double(zeroPoint)) {
            offByOne += 1
            return
        }
        if failures.count < 8 {
            failures.append("\(place()): wrote \(got), the definition gives \(expected) (t = \(t), slack \(slack))")
        } else {
            failures.append("")
        }
    }

    func assertPassed(file: StaticString = #filePath, line: UInt = #line) {
        print("\(label): \(checked) outputs (\(clampedCount) clamped), \(nearBoundary) within float rounding of a rounding boundary, "
            + "\(offByOne) of those one step off")
        XCTAssertGreaterThan(checked, 0, label, file: file, line: line)
        XCTAssertLessThanOrEqual(clampedCount * 4, checked, "\(label): most outputs clamped; the test's scales check little", file: file, line: line)
        XCTAssertTrue(failures.isEmpty, "\(label): \(failures.count) outputs differ from the definition: "
            + failures.prefix(8).joined(separator: "; "), file: file, line: line)
        XCTAssertLessThanOrEqual(nearBoundary * 20, checked, "\(label): the slack admits too many outputs to mean anything",
                                 file: file, line: line)
    }
}

/// Judges float outputs against the definition: |got − definition| ≤ bound, the bound derived per
/// output by the caller from the kernel's float steps. Reports the worst ratio.
struct FloatOutputCheck {
    let label: String
    private(set) var checked = 0, worst = 0.0
    private(set) var failures: [String] = []

    init(_ label: String) { self.label = label }

    mutating func check(_ got: Float, definition: Double, bound: Double, at place: @autoclosure () -> String) {
        checked += 1
        let ratio = abs(Double(got) - definition) / bound
        guard ratio <= 1, !got.isNaN else {
            if failures.count < 8 { failures.append("\(place()): \(got), the definition gives \(definition) (bound \(bound))") }
            else { failures.append("") }
            return
        }
        worst = max(worst, ratio)
    }

    func assertPassed(file: StaticString = #filePath, line: UInt = #line) {
        print("\(label): \(checked) outputs, worst error \(worst) of its bound")
        XCTAssertGreaterThan(checked, 0, label, file: file, line: line)
        XCTAssertTrue(failures.isEmpty, "\(label): \(failures.count) outputs outside their bound: "
            + failures.prefix(8).joined(separator: "; "), file: file, line: line)
    }
}

extension SplitMix64 {
    /// About N(0, 1) (the sum of four uniforms, scaled): bounded, which keeps the inputs finite.
    mutating func normal() -> Float {
        var sum = 0.0
        for _ in 0 ..< 4 { sum += unit() }
        return Float((sum - 2) * 1.7320508075688772)
    }
}

/// The bytes past a row's last column (up to its stride) must keep `sentinel`.
func bytesPastRows(_ buffer: [UInt8], rows: Int, columns: Int, stride: Int, sentinel: UInt8) -> Int {
    var changed = 0
    for r in 0 ..< rows {
        for c in columns ..< stride where buffer[r * stride + c] != sentinel { changed += 1 }
    }
    return changed
}
