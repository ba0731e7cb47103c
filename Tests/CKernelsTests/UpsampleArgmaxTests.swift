import CKernels
import MTLSegTestSupport
import XCTest

/// ck_resample_rows_f32 + ck_blend_argmax_rows_f32 (the clone this CPU runs: AVX-512, AVX2 or portable) against a
/// scalar Swift version of the same operations in the same order (Swift does not fuse multiply-adds): equal bit for bit,
/// masks and all, at widths that leave every vector tail.
final class UpsampleArgmaxTests: XCTestCase {
    func testVectorisedKernelsEqualTheScalarOrder() {
        // A fixed seed, as the other randomised tests: a failure replays as it is (MTLSEG_TEST_SEED tries others).
        let seed = testSeed(#function, fallback: 0x5EED_0901)
        var state = seed
        func next() -> Float {  // SplitMix64 → [-4, 4)
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24) * 8 - 4
        }
        // (classes, logits h, w, out height, width)
        for (k, h, w, oh, ow) in [(2, 64, 64, 480, 640), (3, 19, 26, 75, 102), (5, 7, 9, 33, 17), (4, 64, 64, 30, 40), (1, 5, 5, 3, 71), (7, 16, 16, 16, 16)] {
            var logits = (0 ..< k * h * w).map { _ in next() }
            // Some equal values across classes, so ties are exercised (the first class must win).
            for i in stride(from: 0, to: h * w, by: 5) where k > 1 { logits[h * w + i] = logits[i] }
            var x0 = [UInt32](repeating: 0, count: ow), x1 = x0, y0 = [UInt32](repeating: 0, count: oh), y1 = y0
            var wx0 = [Float](repeating: 0, count: ow), wx1 = wx0, wy0 = [Float](repeating: 0, count: oh), wy1 = wy0
            ck_linear_taps_f32(w, ow, &x0, &x1, &wx0, &wx1)
            ck_linear_taps_f32(h, oh, &y0, &y1, &wy0, &wy1)
            var rows = [Float](repeating: .nan, count: k * h * ow), best = [Float](repeating: 0, count: ow)
            var mask = [UInt8](repeating: 255, count: oh * ow)
            ck_resample_rows_f32(logits, k * h, w, &rows, ow, x0, x1, wx0, wx1)
            // In two row ranges, as threads could split it.
            ck_blend_argmax_rows_f32(rows, k, h, ow, y0, y1, wy0, wy1, &mask, 0, oh / 2, &best)
            ck_blend_argmax_rows_f32(rows, k, h, ow, y0, y1, wy0, wy1, &mask, oh / 2, oh - oh / 2, &best)
            var expectedRows = [Float](repeating: 0, count: k * h * ow), expected = [UInt8](repeating: 0, count: oh * ow)
            for r in 0 ..< k * h {
                for x in 0 ..< ow {
                    let a = logits[r * w + Int(x0[x])] * wx0[x]
                    let b = logits[r * w + Int(x1[x])] * wx1[x]
                    expectedRows[r * ow + x] = a + b
                }
            }
            XCTAssertEqual(rows, expectedRows, "rows \(k)x\(h)x\(w) -> \(ow)")
            for y in 0 ..< oh {
                for x in 0 ..< ow {
                    var top: Float = -.infinity, winner: UInt8 = 0
                    for c in 0 ..< k {
                        let a = expectedRows[(c * h + Int(y0[y])) * ow + x] * wy0[y]
                        let b = expectedRows[(c * h + Int(y1[y])) * ow + x] * wy1[y]
                        let v = a + b
                        if c == 0 || v > top { top = v; winner = UInt8(c) }
                    }
                    expected[y * ow + x] = winner
                }
            }
            XCTAssertEqual(mask, expected, "masks \(k) classes \(w)x\(h) -> \(ow)x\(oh), seed \(seed)")
        }
    }

    /// PyTorch's taps: source (i + 0.5)·in/out − 0.5 clamped at 0, the upper tap clamped to the last index, and a copy
    /// along a dimension that keeps its size.
    func testTaps() {
        var i0 = [UInt32](repeating: 0, count: 5), i1 = i0, w0 = [Float](repeating: 0, count: 5), w1 = w0
        ck_linear_taps_f32(2, 5, &i0, &i1, &w0, &w1)  // sources -0.3→0, 0.1, 0.5, 0.9, 1.3
        XCTAssertEqual(i0, [0, 0, 0, 0, 1])
        XCTAssertEqual(i1, [1, 1, 1, 1, 1])
        for (value, expected) in zip(w1, [0, 0.1, 0.5, 0.9, 0.3] as [Float]) { XCTAssertEqual(value, expected, accuracy: 1e-6) }
        for (a, b) in zip(w0, w1) { XCTAssertEqual(a, 1 - b) }
        ck_linear_taps_f32(5, 5, &i0, &i1, &w0, &w1)
        XCTAssertEqual(i0, [0, 1, 2, 3, 4])
        XCTAssertEqual(i1, i0)
        XCTAssertEqual(w0, [1, 1, 1, 1, 1])
        XCTAssertEqual(w1, [0, 0, 0, 0, 0])
    }
}
