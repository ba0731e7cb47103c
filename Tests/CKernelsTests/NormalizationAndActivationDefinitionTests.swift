import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// LayerNorm (float and quantized) and Mix-FFN's depthwise convolution + GELU (the versions this
/// process's dispatch runs; KernelTierTests runs these again under every tier the CPU has) against
/// their definitions in double precision: LayerNorm from the mean and the biased variance, GELU
/// from erf.
final class NormalizationAndActivationDefinitionTests: XCTestCase {
    private struct LayerNormCase {
        let rows: Int, channels: Int
        let input: [Float], gamma: [Float], beta: [Float]
    }

    /// (rows, channels): the model's widths, one channel, widths that are no multiple of 16 or 4.
    private func layerNormCases(_ rng: inout SplitMix64) -> [LayerNormCase] {
        [(37, 32), (9, 64), (5, 160), (4, 256), (7, 1), (5, 3), (9, 17), (3, 100), (2, 1000)].map { rows, channels in
            // Rows offset from each other by up to 32 (a mean far from 0 tests the variance's centring).
            let input = (0 ..< rows * channels).map { i in rng.normal() * 3 + Float(i / channels % 5) * 8 }
            let gamma = (0 ..< channels).map { _ in 1 + rng.normal() * 0.3 }
            let beta = (0 ..< channels).map { _ in rng.normal() * 0.2 }
            return LayerNormCase(rows: rows, channels: channels, input: input, gamma: gamma, beta: beta)
        }
    }

    /// The definition y = (x − mean)/√(var + eps)·γ + β (biased variance, in double), and the bound
    /// on a float kernel's error: summing n floats errs by at most n·ε·mean|x| in the mean; the
    /// variance, also summed, by (n + 2)·ε relative, half that in 1/√; the centring, the products
    /// and β's addition by a few ε each. In units of |γ|/σ that is ε·(n·mean|x| + |x − mean|·(n/2 + 6)),
    /// plus 2ε·|β|.
    private func layerNormDefinition(_ c: LayerNormCase, eps: Float, row r: Int) -> [(value: Double, bound: Double)] {
        let n = c.channels
        let x = c.input[r * n ..< (r + 1) * n].map(Double.init)
        let mean = x.reduce(0, +) / Double(n)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        let inverse = 1 / (variance + Double(eps)).squareRoot()
        let meanMagnitude = x.map(abs).reduce(0, +) / Double(n)
        return (0 ..< n).map { k in
            let centred = x[k] - mean, g = Double(c.gamma[k]), b = Double(c.beta[k])
            let value = centred * inverse * g + b
            let bound = floatRoundoff * (abs(g) * inverse * (Double(n) * meanMagnitude + abs(centred) * (Double(n) / 2 + 6)) + 2 * abs(b))
            return (value, bound)
        }
    }

    func testLayerNormFollowsMeanAndVariance() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0201))
        var check = FloatOutputCheck("layer_norm_f32")
        for c in layerNormCases(&rng) {
            let eps: Float = 1e-6
            var out = [Float](repeating: .nan, count: c.input.count)
            ck_layer_norm_f32(c.input, &out, c.rows, c.channels, c.gamma, c.beta, eps)
            var inPlace = c.input
            inPlace.withUnsafeMutableBufferPointer { ck_layer_norm_f32($0.baseAddress!, $0.baseAddress!, c.rows, c.channels, c.gamma, c.beta, eps) }
            for r in 0 ..< c.rows {
                for (k, d) in layerNormDefinition(c, eps: eps, row: r).enumerated() {
                    check.check(out[r * c.channels + k], definition: d.value, bound: d.bound, at: "\(c.rows)x\(c.channels) (\(r), \(k))")
                    check.check(inPlace[r * c.channels + k], definition: d.value, bound: d.bound,
                                at: "in place \(c.rows)x\(c.channels) (\(r), \(k))")
                }
            }
        }
        check.assertPassed()
    }

    func testQuantizedLayerNormFollowsMeanAndVariance() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0202))
        var check = QuantizedOutputCheck("layer_norm_quantize_u8")
        for c in layerNormCases(&rng) {
            let eps: Float = 1e-5, inverseScale: Float = 1 / 0.03, zeroPoint: Int32 = 120
            let ldo = c.channels + 9
            var out = [UInt8](repeating: 0xAB, count: c.rows * ldo)
            ck_layer_norm_quantize_u8(c.input, &out, ldo, c.rows, c.channels, c.gamma, c.beta, eps, inverseScale, zeroPoint)
            for r in 0 ..< c.rows {
                for (k, d) in layerNormDefinition(c, eps: eps, row: r).enumerated() {
                    let t = d.value * Double(inverseScale)
                    // y's bound in steps, and the product by 1/scale rounding once more.
                    check.check(Int(out[r * ldo + k]), unrounded: t, zeroPoint: Int(zeroPoint),
                                slack: d.bound * Double(inverseScale) + abs(t) * floatRoundoff, at: "\(c.rows)x\(c.channels) (\(r), \(k))")
                }
            }
            XCTAssertEqual(bytesPastRows(out, rows: c.rows, columns: c.channels, stride: ldo, sentinel: 0xAB), 0, "\(c.rows)x\(c.channels)")
        }
        check.assertPassed()
    }

    /// out = quantize(GELU(in_scale·Σ_taps (q − zp)·w + bias)) with zero padding at the borders and
    /// GELU(v) = ½·v·(1 + erf(v/√2)), in row bands as the engine's threads call it.
    func testDepthwiseConvolutionGELUFollowsErf() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0203))
        var check = QuantizedOutputCheck("dwconv3x3_gelu_u8")
        // (height, width, channels, row stride): one pixel, one channel, ragged channel blocks, the model's 64 and 128.
        let shapes = [(5, 7, 40, 48), (1, 1, 3, 16), (2, 3, 20, 32), (9, 4, 1, 16), (9, 13, 35, 48), (4, 5, 16, 16),
                      (7, 3, 128, 128), (3, 17, 47, 52), (6, 6, 64, 64)]
        for (h, w, channels, ld) in shapes {
            let input = (0 ..< h * w * ld).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            let weight = (0 ..< 9 * channels).map { _ in rng.normal() * 0.3 }
            let bias = (0 ..< channels).map { _ in rng.normal() }
            let inScale: Float = 0.05, inZero: Int32 = 117, outInverseScale: Float = 1 / 0.03, outZero: Int32 = 20
            var out = [UInt8](repeating: 0xCD, count: h * w * ld)
            var scratch = [Float](repeating: 0, count: 2 * channels)
            for first in stride(from: 0, to: h, by: 2) {
                ck_dwconv3x3_gelu_u8(input, ld, &out, ld, h, w, channels, weight, bias, inScale, inZero, outInverseScale, outZero,
                                     first, 2, &scratch)
            }
            for y in 0 ..< h {
                for x in 0 ..< w {
                    for c in 0 ..< channels {
                        var sum = 0.0, magnitude = 0.0
                        for dy in -1 ... 1 {
                            for dx in -1 ... 1 {
                                let sy = y + dy, sx = x + dx
                                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                                let term = Double(Int(input[(sy * w + sx) * ld + c]) - Int(inZero)) * Double(weight[((dy + 1) * 3 + dx + 1) * channels + c])
                                sum += term
                                magnitude += abs(term)
                            }
                        }
                        let v = sum * Double(inScale) + Double(bias[c])
                        let gelu = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                        let t = gelu * Double(outInverseScale)
                        // Float steps: the 9 products and their sum within 9ε·Σ|term|, the scale and
                        // bias 2ε more; GELU's slope is at most 1.13; the kernels' erf within 2.4e-7 (every
                        // version's pieces 2.2e-7, documented with ck_erf_pieces),
                        // so ½·|v|·erf within 1.2e-7·|v|; its argument and the products a few ε of |v|;
                        // ·1/scale once more.
                        let errorOfV = floatRoundoff * (11 * Double(inScale) * magnitude + 2 * abs(Double(bias[c])))
                        let errorOfGELU = 1.13 * errorOfV + abs(v) * (0.12e-6 + (3 + abs(v)) * floatRoundoff)
                        check.check(Int(out[(y * w + x) * ld + c]), unrounded: t, zeroPoint: Int(outZero),
                                    slack: errorOfGELU * Double(outInverseScale) + abs(t) * floatRoundoff,
                                    at: "\(h)x\(w)x\(channels) (\(y), \(x), \(c))")
                    }
                }
            }
            XCTAssertEqual(bytesPastRows(out, rows: h * w, columns: channels, stride: ld, sentinel: 0xCD), 0, "\(h)x\(w)x\(channels)")
        }
        check.assertPassed()
    }
}
