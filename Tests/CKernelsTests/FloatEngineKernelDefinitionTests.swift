import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// The fp32 engine's kernels that have only a portable version (GELU, softmax, the depthwise
/// convolution, the cross-task gate) and the int8 engine's patch gathering, against their
/// definitions in double precision. ParityTests compares whole forward passes with PyTorch; these
/// pin each operation down on its own, edges included.
final class FloatEngineKernelDefinitionTests: XCTestCase {
    /// GELU(x) = ½·x·(1 + erf(x/√2)), in place.
    func testGELUFollowsErf() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0501))
        var check = FloatOutputCheck("gelu_erf_f32")
        let input = (0 ..< 4099).map { i in i < 3 ? [Float(0), -0.0, 1e-30][i] : rng.normal() * 4 }
        var out = input
        ck_gelu_erf_f32(&out, out.count)
        for (i, x) in input.map(Double.init).enumerated() {
            let gelu = 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
            // erf within 2e-7 (Abramowitz & Stegun 7.1.26 in float, as documented with it), scaled by ½|x|; its
            // argument and the two products a few ε of |x| (erf's slope is at most 1.13).
            let bound = abs(x) * (1e-7 + (3 + abs(x)) * floatRoundoff) + 3 * floatRoundoff * abs(gelu) + 1e-45
            check.check(out[i], definition: gelu, bound: bound, at: "x = \(x)")
        }
        check.assertPassed()
    }

    /// y = exp(s·scale − max) / Σ exp(…) per row, in place.
    func testSoftmaxRowsFollowExp() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0502))
        var check = FloatOutputCheck("softmax_rows_f32")
        for (rows, cols, spread, scale) in [(7, 1, Float(1), Float(1)), (9, 17, 5, 0.5), (4, 64, 3, 0.17677669), (3, 1000, 8, 1), (2, 31, 30, 0.1)] {
            let input = (0 ..< rows * cols).map { _ in rng.normal() * spread }
            var out = input
            ck_softmax_rows_f32(&out, rows, cols, scale)
            for r in 0 ..< rows {
                let row = input[r * cols ..< (r + 1) * cols].map { Double($0) * Double(scale) }
                let largest = row.max()!
                let exps = row.map { exp($0 - largest) }
                let sum = exps.reduce(0, +)
                for c in 0 ..< cols {
                    let p = exps[c] / sum
                    // s·scale and max·scale round (ε each of their size, an absolute error in the exponent, twice:
                    // in this term and in the sum's largest), the exp within about 2 ulp (4ε; 6ε allowed), the float
                    // sum of `cols` terms within cols·ε, the reciprocal and the product 2ε.
                    let exponentError = 2 * floatRoundoff * (abs(row[c]) + abs(largest))
                    let bound = p * (exponentError * 2 + (Double(cols) + 8) * floatRoundoff) + 1e-45
                    check.check(out[r * cols + c], definition: p, bound: bound, at: "\(rows)x\(cols) (\(r), \(c))")
                }
            }
        }
        check.assertPassed()
    }

    /// out = bias + Σ_taps in·w over the 3×3 neighbourhood, zero padding at the borders.
    func testDepthwiseConvolutionFollowsItsSum() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0503))
        var check = FloatOutputCheck("dwconv3x3_hwc_f32")
        for (h, w, channels) in [(1, 1, 3), (5, 7, 1), (9, 4, 17), (6, 6, 64), (2, 13, 33)] {
            let input = (0 ..< h * w * channels).map { _ in rng.normal() }
            let weight = (0 ..< 9 * channels).map { _ in rng.normal() * 0.3 }
            let bias = (0 ..< channels).map { _ in rng.normal() }
            var out = [Float](repeating: .nan, count: input.count)
            ck_dwconv3x3_hwc_f32(input, &out, h, w, channels, weight, bias)
            for y in 0 ..< h {
                for x in 0 ..< w {
                    for c in 0 ..< channels {
                        var sum = Double(bias[c]), magnitude = abs(Double(bias[c]))
                        for dy in -1 ... 1 {
                            for dx in -1 ... 1 {
                                let sy = y + dy, sx = x + dx
                                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                                let term = Double(input[(sy * w + sx) * channels + c]) * Double(weight[((dy + 1) * 3 + dx + 1) * channels + c])
                                sum += term
                                magnitude += abs(term)
                            }
                        }
                        // Nine products and nine additions, each within ε of the partial sums' magnitude.
                        check.check(out[(y * w + x) * channels + c], definition: sum, bound: 18 * floatRoundoff * magnitude + 1e-45,
                                    at: "\(h)x\(w)x\(channels) (\(y), \(x), \(c))")
                    }
                }
            }
        }
        check.assertPassed()
    }

    /// out[p][c] += sigmoid(self[p] + other[p] + bias) · other_map[p][c].
    func testGateFollowsTheSigmoid() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0504))
        var check = FloatOutputCheck("gate_accumulate_f32")
        for (pixels, channels) in [(1, 1), (37, 19), (64, 256)] {
            var selfScore = (0 ..< pixels).map { _ in rng.normal() * 3 }
            let otherScore = (0 ..< pixels).map { _ in rng.normal() * 3 }
            selfScore[0] = 100  // saturated: a = 1
            let other = (0 ..< pixels * channels).map { _ in rng.normal() }
            let start = (0 ..< pixels * channels).map { _ in rng.normal() }
            let bias: Float = 0.3
            var out = start
            ck_gate_accumulate_f32(selfScore, otherScore, bias, other, &out, pixels, channels)
            for p in 0 ..< pixels {
                let z = Double(selfScore[p]) + Double(otherScore[p]) + Double(bias)
                let a = 1 / (1 + exp(-z))
                for c in 0 ..< channels {
                    let i = p * channels + c
                    let value = Double(start[i]) + a * Double(other[i])
                    // The score's two additions (ε·|terms|, which the sigmoid's slope ¼ scales), exp within about
                    // 2 ulp (4ε; 6ε allowed), 1 + e and the reciprocal 2ε of a; the product and the sum ε each (2ε: the
                    // sum's rounding alone comes within a hair of ε·|value|, and the terms above are first-order).
                    let errorOfA = 0.25 * 2 * floatRoundoff * (abs(Double(selfScore[p])) + abs(Double(otherScore[p])) + Double(abs(bias)))
                        + a * 8 * floatRoundoff
                    let bound = errorOfA * abs(Double(other[i])) + 2 * floatRoundoff * (abs(a * Double(other[i])) + abs(value)) + 1e-45
                    check.check(out[i], definition: value, bound: bound, at: "\(pixels)x\(channels) (\(p), \(c))")
                }
            }
        }
        check.assertPassed()
    }

    /// Row (oy, ox) of the patches holds in[oy·s − p + ky][ox·s − p + kx][c] at (ky·k + kx)·C + c, the zero point
    /// outside the map; rows first_row ..< first_row + row_count only, each at its own place.
    func testQuantizedPatchesGatherTheirNeighbourhoods() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0505))
        // (height, width, channels, kernel, stride, padding)
        for (h, w, channels, k, s, p) in [(8, 9, 3, 7, 4, 3), (5, 5, 1, 3, 2, 1), (7, 3, 33, 3, 1, 1), (1, 1, 4, 3, 2, 1)] {
            let ldi = channels + 3
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            let input = (0 ..< h * w * ldi).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            let ldc = k * k * channels + 5, pad: UInt8 = 77
            var cols = [UInt8](repeating: 0xEE, count: oh * ow * ldc)
            let split = oh / 2
            ck_im2col_hwc_u8(input, ldi, h, w, channels, k, s, p, oh, ow, pad, &cols, ldc, 0, split)
            ck_im2col_hwc_u8(input, ldi, h, w, channels, k, s, p, oh, ow, pad, &cols, ldc, split, oh - split)
            var wrong = 0
            for oy in 0 ..< oh {
                for ox in 0 ..< ow {
                    let row = (oy * ow + ox) * ldc
                    for ky in 0 ..< k {
                        for kx in 0 ..< k {
                            let iy = oy * s - p + ky, ix = ox * s - p + kx
                            for c in 0 ..< channels {
                                let expected = iy >= 0 && iy < h && ix >= 0 && ix < w ? input[(iy * w + ix) * ldi + c] : pad
                                if cols[row + (ky * k + kx) * channels + c] != expected { wrong += 1 }
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(wrong, 0, "\(h)x\(w)x\(channels) k\(k) s\(s) p\(p)")
            XCTAssertEqual(bytesPastRows(cols, rows: oh * ow, columns: k * k * channels, stride: ldc, sentinel: 0xEE), 0, "wrote past its rows")
        }
    }
}
