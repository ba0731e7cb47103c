import CKernels
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// ck_conv2d_s16 (the ISA this CPU runs) against its portable version (bit for bit: the
/// sums are exact integers) and against a double-precision convolution of the unquantized
/// input and weights, within the bound the two roundings allow.
final class ConvS16Tests: XCTestCase {
    func testInt16ConvolutionMatchesPortableAndStaysWithinItsRoundingBound() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0005))
        // (height, width, channels, kernel, stride, out channels, channels-first input)
        let shapes: [(Int, Int, Int, Int, Int, Int, Bool)] = [
            (37, 45, 3, 7, 4, 32, true), (16, 16, 3, 7, 4, 32, true), (18, 23, 32, 3, 2, 64, false),
            (9, 30, 5, 3, 2, 40, false), (8, 8, 16, 3, 2, 17, true), (5, 70, 4, 3, 1, 33, false), (3, 3, 64, 3, 2, 160, false),
        ]
        for (h, w, cin, k, s, cout, chw) in shapes {
            let label = "shape \(h)x\(w)x\(cin) k\(k) s\(s) → \(cout)"
            let p = k / 2
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            // An outlier channel, as LayerNorm outputs have: the per-frame scale must not clip it.
            let input = (0 ..< h * w * cin).map { i in Float.random(in: -2 ... 2, using: &rng) * (i % cin == 1 ? 8 : 1) }
            let weight = (0 ..< cout * k * k * cin).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let bias = (0 ..< cout).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let rowStride = chw ? w : w * cin, pixelStride = chw ? 1 : cin, channelStride = chw ? h * w : 1

            let bound = ck_conv2d_s16_weight_max(k, cin)
            XCTAssertGreaterThanOrEqual(bound, 127, label)
            let packedCount = ck_conv2d_s16_packed_size(cout, k, cin)
            let packed = UnsafeMutableRawPointer.allocate(byteCount: packedCount * 2, alignment: 64).bindMemory(to: Int16.self, capacity: packedCount)
            defer { packed.deallocate() }
            var weightScales = [Float](repeating: 0, count: cout)
            ck_conv2d_s16_pack(weight, cout, k, cin, packed, &weightScales)

            let largest = ck_max_abs_f32(input, input.count)
            XCTAssertEqual(largest, input.map(abs).max()!, label)
            let inputScale = largest / Float(CK_S16_INPUT_MAX)
            let cp = ck_conv2d_s16_channel_stride(cin)
            let mapWidth = ck_conv2d_s16_map_width(w, k, s, p), mapHeight = ck_conv2d_s16_map_height(h, p)
            var map = [Int16](repeating: 0, count: mapHeight * mapWidth * cp)
            // In two row ranges, as threads split it.
            ck_quantize_s16_map(input, w, cin, rowStride, pixelStride, channelStride, 1 / inputScale, &map, mapWidth, p, 0, h / 2)
            ck_quantize_s16_map(input, w, cin, rowStride, pixelStride, channelStride, 1 / inputScale, &map, mapWidth, p, h / 2, h - h / 2)
            var portableMap = [Int16](repeating: 0, count: map.count)
            ck_quantize_s16_map_portable(input, w, cin, rowStride, pixelStride, channelStride, 1 / inputScale, &portableMap, mapWidth, p, 0, h)
            XCTAssertEqual(map, portableMap, label)
            // The border stays zero, and zeroing it leaves the input's pixels alone.
            var bordered = map
            ck_zero_s16_map_border(&bordered, h, w, cin, mapWidth, p)
            XCTAssertEqual(bordered, map, label)
            let scales = weightScales.map { $0 * inputScale }

            var fast = [Float](repeating: .nan, count: oh * ow * cout), portable = fast
            let split = oh / 2
            ck_conv2d_s16(map, mapWidth, cin, packed, cout, k, s, scales, bias, &fast, ow, 0, split)
            ck_conv2d_s16(map, mapWidth, cin, packed, cout, k, s, scales, bias, &fast, ow, split, oh - split)
            ck_conv2d_s16_portable(map, mapWidth, cin, packed, cout, k, s, scales, bias, &portable, ow, 0, oh)
            XCTAssertEqual(fast.map(\.bitPattern), portable.map(\.bitPattern), label)

            // |x̂ŵ − xw| ≤ |x|·εw + |w|·εx + εx·εw per term, εx = input scale / 2, εw = the channel's weight scale / 2.
            let ex = Double(inputScale) / 2
            var worst = 0.0
            for oy in 0 ..< oh {
                for ox in 0 ..< ow {
                    for o in 0 ..< cout {
                        let ew = Double(weightScales[o]) / 2
                        var sum = Double(bias[o]), allowed = 1e-6 * abs(Double(bias[o]))
                        for ky in 0 ..< k {
                            for kx in 0 ..< k {
                                let iy = oy * s - p + ky, ix = ox * s - p + kx
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                for c in 0 ..< cin {
                                    let x = Double(input[iy * rowStride + ix * pixelStride + c * channelStride])
                                    let wt = Double(weight[((o * k + ky) * k + kx) * cin + c])
                                    sum += x * wt
                                    allowed += abs(x) * ew + abs(wt) * ex + ex * ew + 1e-6 * abs(x * wt)
                                }
                            }
                        }
                        worst = max(worst, abs(Double(fast[(oy * ow + ox) * cout + o]) - sum) / allowed)
                    }
                }
            }
            XCTAssertLessThanOrEqual(worst, 1.0, label)
        }
    }

    func testWeightBoundKeepsEverySumInsideInt32() {
        for (k, c) in [(7, 3), (3, 32), (3, 64), (3, 128), (3, 320), (3, 2000)] {
            let bound = Int(ck_conv2d_s16_weight_max(k, c))
            let taps = k * k * ck_conv2d_s16_channel_stride(c)
            if bound > 0 {
                XCTAssertLessThan(taps * Int(CK_S16_INPUT_MAX) * bound, Int(Int32.max), "k\(k) c\(c)")
                XCTAssertLessThanOrEqual(bound, 32767)
            } else {
                XCTAssertGreaterThanOrEqual(taps * Int(CK_S16_INPUT_MAX) * 127, Int(Int32.max), "k\(k) c\(c): 0 only when 7 bits do not fit")
            }
        }
    }
}
