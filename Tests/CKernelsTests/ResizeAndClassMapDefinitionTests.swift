import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// The decoder's kernels and the input's and output's conversions (the versions this process's
/// dispatch runs; KernelTierTests runs these again under every tier the CPU has) against their
/// definitions in double precision: bilinear resizing with align_corners=False from its formula,
/// the folded decoder's sum, quantization, and the class map's argmax and counts.
final class ResizeAndClassMapDefinitionTests: XCTestCase {
    /// One output index's two source indices and the second's weight, PyTorch's align_corners=False:
    /// src = (i + ½)·in/out − ½, clamped at 0; the taps floor(src) and the next, clamped at the edge.
    private func taps(out: Int, in size: Int, _ i: Int) -> (Int, Int, Double) {
        let src = max(0, (Double(i) + 0.5) * Double(size) / Double(out) - 0.5)
        let low = min(Int(src.rounded(.down)), size - 1)
        return (low, min(low + 1, size - 1), src - Double(low))
    }

    /// The resized value of channel c at (y, x), and the bound on a float kernel's error: the source
    /// coordinate (i + ½)·(in/out) − ½ in float is within 3ε·in of the true one per axis, which moves
    /// the weights by as much, each weight's change scaled by at most 2·max|tap|; the weights' products
    /// and the sum of four terms within 8ε·Σ|w·v|.
    private func resized(_ map: [Float], height: Int, width: Int, channels: Int, outHeight: Int, outWidth: Int,
                         _ y: Int, _ x: Int, _ c: Int) -> (value: Double, bound: Double, magnitude: Double) {
        let (y0, y1, wy) = taps(out: outHeight, in: height, y)
        let (x0, x1, wx) = taps(out: outWidth, in: width, x)
        func at(_ sy: Int, _ sx: Int) -> Double { Double(map[(sy * width + sx) * channels + c]) }
        let terms = [(1 - wy) * (1 - wx) * at(y0, x0), (1 - wy) * wx * at(y0, x1), wy * (1 - wx) * at(y1, x0), wy * wx * at(y1, x1)]
        let largest = [at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)].map(abs).max()!
        let magnitude = terms.map(abs).reduce(0, +)
        let coordinateError = 3 * floatRoundoff * Double(height + width + 1)
        return (terms.reduce(0, +), 8 * floatRoundoff * magnitude + coordinateError * 2 * largest, magnitude)
    }

    func testBilinearResizeFollowsItsFormula() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0301))
        var check = FloatOutputCheck("resize_bilinear_hwc_rows_f32")
        // (in height, in width, channels, out height, out width, accumulate, band of rows): up, down,
        // the same size, one pixel, one channel, the model's ×4.
        let shapes = [(7, 5, 19, 13, 22, true, 3), (13, 22, 3, 7, 5, true, 2), (1, 1, 5, 4, 4, false, 4), (3, 9, 33, 3, 9, true, 1),
                      (16, 16, 1, 64, 64, false, 7), (32, 32, 2, 128, 128, true, 50), (5, 3, 4, 17, 2, false, 17)]
        for (ih, iw, channels, oh, ow, accumulate, band) in shapes {
            let input = (0 ..< ih * iw * channels).map { _ in rng.normal() }
            let start = (0 ..< oh * ow * channels).map { _ in accumulate ? rng.normal() : 0 }
            var out = start
            for first in stride(from: 0, to: oh, by: band) {
                ck_resize_bilinear_hwc_rows_f32(input, ih, iw, channels, &out, oh, ow, first, band, accumulate ? 1 : 0)
            }
            for y in 0 ..< oh {
                for x in 0 ..< ow {
                    for c in 0 ..< channels {
                        let r = resized(input, height: ih, width: iw, channels: channels, outHeight: oh, outWidth: ow, y, x, c)
                        let i = (y * ow + x) * channels + c
                        let value = Double(start[i]) + r.value
                        check.check(out[i], definition: value, bound: r.bound + floatRoundoff * (abs(value) + 1e-30),
                                    at: "\(ih)x\(iw)x\(channels) → \(oh)x\(ow) (\(y), \(x), \(c))")
                    }
                }
            }
        }
        check.assertPassed()
    }

    /// F = quantize(ReLU(band + Σ_i resize(maps[i]) + bias)), band by band as the engine calls it.
    func testDecoderSumFollowsResizeReLUAndQuantization() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0302))
        var check = QuantizedOutputCheck("decoder_sum_quantize_u8")
        // (out height, out width, channels, band of rows, the maps' heights and widths): the b0 ratios,
        // odd sizes, one map, one channel, a map larger than the output.
        let shapes: [(Int, Int, Int, Int, [Int], [Int])] = [
            (16, 16, 8, 4, [8, 4, 2], [8, 4, 2]), (13, 22, 19, 3, [7, 4, 1], [11, 6, 2]), (5, 3, 40, 5, [5], [3]),
            (9, 7, 1, 2, [3, 9], [14, 7]),
        ]
        for (oh, ow, channels, bandRows, heights, widths) in shapes {
            let maps = zip(heights, widths).map { h, w in (0 ..< h * w * channels).map { _ in rng.normal() } }
            let base = (0 ..< oh * ow * channels).map { _ in rng.normal() }
            let bias = (0 ..< channels).map { _ in rng.normal() * 0.5 }
            let inverseScale: Float = 1 / 0.05, zeroPoint: Int32 = 3, ldo = channels + 5
            var out = [UInt8](repeating: 0xAB, count: oh * ow * ldo)
            var scratch = [Float](repeating: 0, count: widths.reduce(0, +) * channels)
            for first in stride(from: 0, to: oh, by: bandRows) {
                let rows = min(bandRows, oh - first)
                var band = Array(base[first * ow * channels ..< (first + rows) * ow * channels])
                withMapPointers(maps) { pointers in
                    ck_decoder_sum_quantize_u8(&band, maps.count, pointers, heights, widths, channels, oh, ow, first, rows, bias,
                                               inverseScale, zeroPoint, &out, ldo, &scratch)
                }
            }
            for y in 0 ..< oh {
                for x in 0 ..< ow {
                    for c in 0 ..< channels {
                        var value = Double(base[(y * ow + x) * channels + c]) + Double(bias[c])
                        var bound = 0.0, magnitude = abs(value)
                        for (i, map) in maps.enumerated() {
                            let r = resized(map, height: heights[i], width: widths[i], channels: channels, outHeight: oh, outWidth: ow, y, x, c)
                            value += r.value
                            bound += r.bound
                            magnitude += r.magnitude
                        }
                        // The additions of the maps and the bias: one rounding each, of partial sums ≤ Σ|terms|.
                        bound += Double(maps.count + 2) * floatRoundoff * magnitude
                        let t = max(value, 0) * Double(inverseScale)
                        check.check(Int(out[(y * ow + x) * ldo + c]), unrounded: t, zeroPoint: Int(zeroPoint),
                                    slack: bound * Double(inverseScale) + t * floatRoundoff, at: "\(oh)x\(ow)x\(channels) (\(y), \(x), \(c))")
                    }
                }
            }
            XCTAssertEqual(bytesPastRows(out, rows: oh * ow, columns: channels, stride: ldo, sentinel: 0xAB), 0, "\(oh)x\(ow)x\(channels)")
        }
        check.assertPassed()
    }

    private func withMapPointers(_ maps: [[Float]], _ body: ([UnsafePointer<Float>?]) -> Void) {
        func nest(_ i: Int, _ pointers: [UnsafePointer<Float>?]) {
            guard i < maps.count else { return body(pointers) }
            maps[i].withUnsafeBufferPointer { nest(i + 1, pointers + [$0.baseAddress]) }
        }
        nest(0, [])
    }

    /// q = clamp(round_half_even(x·inv_scale) + zero_point): rows with strides.
    func testQuantizationFollowsItsFormula() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0303))
        var check = QuantizedOutputCheck("quantize_rows_u8")
        for (rows, channels) in [(37, 83), (1, 1), (5, 3), (16, 64)] {
            let ldi = channels + 2, ldo = channels + 3
            let input = (0 ..< rows * ldi).map { _ in rng.normal() }
            let inverseScale: Float = 1 / 0.031, zeroPoint: Int32 = 131
            var out = [UInt8](repeating: 0xAB, count: rows * ldo)
            ck_quantize_rows_u8(input, ldi, &out, ldo, rows, channels, inverseScale, zeroPoint)
            for r in 0 ..< rows {
                for c in 0 ..< channels {
                    let t = Double(input[r * ldi + c]) * Double(inverseScale)
                    check.check(Int(out[r * ldo + c]), unrounded: t, zeroPoint: Int(zeroPoint), slack: abs(t) * floatRoundoff,
                                at: "rows \(rows)x\(channels) (\(r), \(c))")
                }
            }
            XCTAssertEqual(bytesPastRows(out, rows: rows, columns: channels, stride: ldo, sentinel: 0xAB), 0)
        }
        check.assertPassed()
    }

    /// mask[p] = the first class of largest logit (NaNs never win; all NaN gives 0), counts[class] += 1.
    func testArgmaxTakesTheFirstLargestAndCounts() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0304))
        for classes in [1, 2, 3, 19, 150, 256] {
            let pixels = 41, ldi = classes + 2
            // Few distinct values, so that ties are common.
            var logits = (0 ..< pixels * ldi).map { _ in Float(Int.random(in: -3 ... 3, using: &rng)) * 0.5 }
            for c in 0 ..< classes { logits[c] = .nan } // pixel 0: all NaN
            logits[ldi] = .nan // pixel 1: NaN first
            var mask = [UInt8](repeating: 0xEE, count: pixels)
            let start = (0 ..< 256).map { _ in UInt32.random(in: 0 ... 1000, using: &rng) }
            var counts = start
            ck_argmax_count_f32(logits, ldi, pixels, classes, &mask, &counts)
            var expectedCounts = start
            for p in 0 ..< pixels {
                let row = logits[p * ldi ..< p * ldi + classes]
                let winner = row.filter { !$0.isNaN }.max().map { largest in row.firstIndex(of: largest)! - p * ldi } ?? 0
                XCTAssertEqual(Int(mask[p]), winner, "\(classes) classes, pixel \(p)")
                expectedCounts[winner] += 1
            }
            XCTAssertEqual(counts, expectedCounts, "\(classes) classes")
        }
    }
}
