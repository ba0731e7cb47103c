import CKernels
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// ck_conv2d_f32 (the ISA this CPU runs) against its portable version (bit for bit)
/// and against a double-precision direct convolution (to fp32 rounding).
final class ConvTests: XCTestCase {
    func testDirectConvolutionMatchesPortableAndReference() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0004))
        // (height, width, channels, kernel, stride, out channels, channels-first)
        let shapes: [(Int, Int, Int, Int, Int, Int, Bool)] = [
            (37, 45, 3, 7, 4, 32, true), (16, 16, 3, 7, 4, 32, true), (18, 23, 32, 3, 2, 64, false),
            (9, 30, 5, 3, 2, 40, false), (8, 8, 16, 3, 2, 17, true), (5, 70, 4, 3, 1, 33, false),
        ]
        for (h, w, cin, k, s, cout, chw) in shapes {
            let p = k / 2
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            let input = (0 ..< h * w * cin).map { _ in Float.random(in: -2 ... 2, using: &rng) }
            let weight = (0 ..< cout * k * k * cin).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let bias = (0 ..< cout).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let packedCount = ck_conv2d_f32_packed_size(cout, k, cin)
            let packed = UnsafeMutableRawPointer.allocate(byteCount: packedCount * 4, alignment: 64).bindMemory(to: Float.self, capacity: packedCount)
            defer { packed.deallocate() }
            ck_conv2d_f32_pack(weight, cout, k, cin, packed)
            let rowStride = chw ? w : w * cin, pixelStride = chw ? 1 : cin, channelStride = chw ? h * w : 1
            func value(_ y: Int, _ x: Int, _ c: Int) -> Double { Double(input[y * rowStride + x * pixelStride + c * channelStride]) }
            var fast = [Float](repeating: .nan, count: oh * ow * cout), portable = fast
            // The fast version in two row ranges, as threads split it.
            let split = oh / 2
            ck_conv2d_f32(input, h, w, cin, rowStride, pixelStride, channelStride, packed, cout, k, s, p, bias, &fast, oh, ow, 0, split)
            ck_conv2d_f32(input, h, w, cin, rowStride, pixelStride, channelStride, packed, cout, k, s, p, bias, &fast, oh, ow, split, oh - split)
            ck_conv2d_f32_portable(input, h, w, cin, rowStride, pixelStride, channelStride, packed, cout, k, s, p, bias, &portable, oh, ow, 0, oh)
            XCTAssertEqual(fast.map(\.bitPattern), portable.map(\.bitPattern), "shape \(h)x\(w)x\(cin) k\(k) s\(s) → \(cout)")
            var worst = 0.0
            for oy in 0 ..< oh {
                for ox in 0 ..< ow {
                    for o in 0 ..< cout {
                        var sum = Double(bias[o]), magnitude = abs(Double(bias[o]))
                        for ky in 0 ..< k {
                            for kx in 0 ..< k {
                                let iy = oy * s - p + ky, ix = ox * s - p + kx
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                for c in 0 ..< cin {
                                    let term = value(iy, ix, c) * Double(weight[((o * k + ky) * k + kx) * cin + c])
                                    sum += term
                                    magnitude += abs(term)
                                }
                            }
                        }
                        worst = max(worst, abs(Double(fast[(oy * ow + ox) * cout + o]) - sum) / max(magnitude, 1e-30))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-6, "shape \(h)x\(w)x\(cin) k\(k) s\(s) → \(cout)")
        }
    }
}
