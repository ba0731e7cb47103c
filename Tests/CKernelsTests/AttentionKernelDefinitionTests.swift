import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// The int8 attention's kernels other than the GEMMs (the version this process's dispatch runs;
/// KernelTierTests runs these again under every tier the CPU has) against the operations'
/// definitions in double precision: softmax's exponentials from exp, the per-head scaling and
/// quantization from its formula, and the keys' and values' symmetric quantization.
final class AttentionKernelDefinitionTests: XCTestCase {
    /// e[c] = round_half_even(255·exp(s[c] − max_c s)), inv_sums = 1/Σ e as float.
    func testSoftmaxExponentialsFollowExp() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0101))
        var check = QuantizedOutputCheck("softmax_exp_u8")
        // (rows, columns, spread): ragged widths around 16 and 64 lanes, one column, the model's 64 and 256.
        let shapes: [(Int, Int, Float)] = [(37, 83, 4), (5, 1, 1), (9, 17, 5), (64, 64, 6), (16, 256, 3), (3, 1000, 8),
                                           (7, 31, 30), (20, 15, 0.3)]
        for (rows, cols, spread) in shapes {
            let lds = cols + 3, ldo = cols + 5
            var scores = (0 ..< rows * lds).map { _ in rng.normal() * spread }
            if cols > 1 { scores[0] = -.infinity } // exp(−∞) = 0
            if rows > 2 { for c in 0 ..< cols { scores[2 * lds + c] = -1e30 } } // a row far below the others: all equal
            var out = [UInt8](repeating: 0xAB, count: rows * ldo)
            var inverseSums = [Float](repeating: .nan, count: rows)
            ck_softmax_exp_u8(scores, lds, rows, cols, &out, ldo, &inverseSums)
            for r in 0 ..< rows {
                let row = scores[r * lds ..< r * lds + cols].map(Double.init)
                let largest = row.max()!
                var sum = 0
                for c in 0 ..< cols {
                    let d = row[c] - largest
                    let t = 255 * exp(d)
                    // The kernels' exp is within 3e-6 relative (the AVX-512 version's 2.7e-6, documented
                    // with it; the others' ~1e-7); s − max rounds in float (error ≤ ε·|d|, which exp turns
                    // into a relative ε·|d|), and ·255 once more.
                    let slack = d.isFinite ? t * (3e-6 + (abs(d) + 2) * floatRoundoff) : 0
                    check.check(Int(out[r * ldo + c]), unrounded: t, slack: slack,
                                at: "\(rows)x\(cols) row \(r) column \(c)")
                    sum += Int(out[r * ldo + c])
                }
                XCTAssertEqual(inverseSums[r], 1 / Float(sum), "\(rows)x\(cols) row \(r): 1/Σ of the bytes written")
            }
            XCTAssertEqual(bytesPastRows(out, rows: rows, columns: cols, stride: ldo, sentinel: 0xAB), 0, "\(rows)x\(cols) wrote past its columns")
        }
        check.assertPassed()
    }

    /// out[r][h·d + c] = quantize(in[r][h·d + c] · factors[h·rows + r]).
    func testScaledHeadsFollowTheirFormula() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0102))
        var check = QuantizedOutputCheck("scale_heads_quantize_u8")
        // (rows, heads, head dim): one head, the model's 32 channels, ragged dims.
        for (rows, heads, dim) in [(37, 1, 32), (20, 2, 32), (9, 5, 32), (5, 8, 32), (7, 3, 20), (4, 2, 5), (3, 1, 1)] {
            let width = heads * dim, ldi = width + 2, ldo = width + 7
            var input = (0 ..< rows * ldi).map { _ in rng.normal() * 4 }
            input[0] = 3e9
            if input.count > 1 { input[1] = -3e9 } // far past the byte range both ways
            let factors = (0 ..< rows * heads).map { _ in Float(0.05 + rng.unit()) }
            let inverseScale: Float = 1 / 0.07, zeroPoint: Int32 = 120
            var out = [UInt8](repeating: 0xAB, count: rows * ldo)
            ck_scale_heads_quantize_u8(input, ldi, rows, heads, dim, factors, &out, ldo, inverseScale, zeroPoint)
            for r in 0 ..< rows {
                for h in 0 ..< heads {
                    for c in 0 ..< dim {
                        let t = Double(input[r * ldi + h * dim + c]) * Double(factors[h * rows + r]) * Double(inverseScale)
                        // Two float products: each within ε of its exact value.
                        check.check(Int(out[r * ldo + h * dim + c]), unrounded: t, zeroPoint: Int(zeroPoint),
                                    slack: abs(t) * 2.5 * floatRoundoff, at: "\(rows)x\(heads)x\(dim) row \(r) head \(h) column \(c)")
                    }
                }
            }
            XCTAssertEqual(bytesPastRows(out, rows: rows, columns: width, stride: ldo, sentinel: 0xAB), 0)
        }
        check.assertPassed()
    }

    /// scale = max|x| / 127, q = round_half_even(x / scale) (row-major, or transposed), and the
    /// row sums of what it wrote.
    func testKeysAndValuesQuantizeSymmetrically() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0103))
        var check = QuantizedOutputCheck("quantize_symmetric_s8", low: -127, high: 127)
        // (rows, columns): more than one block of 16 rows and 256 columns when transposed, one of each.
        for (rows, cols) in [(37, 83), (1, 1), (16, 256), (17, 300), (64, 32), (5, 1)] {
            let ldi = cols + 1
            let input = (0 ..< rows * ldi).map { _ in rng.normal() * 3 }
            for transpose in [Int32(0), 1] {
                let ldo = transpose != 0 ? rows + 4 : cols + 4
                var out = [Int8](repeating: 99, count: (transpose != 0 ? cols : rows) * ldo)
                let scale = ck_quantize_symmetric_s8(input, ldi, rows, cols, &out, ldo, transpose)
                var largest = 0.0
                for r in 0 ..< rows { for c in 0 ..< cols { largest = max(largest, abs(Double(input[r * ldi + c]))) } }
                // The scale is one float division of the largest magnitude (exact) by 127.
                XCTAssertEqual(Double(scale), largest / 127, accuracy: largest / 127 * floatRoundoff, "\(rows)x\(cols)")
                for r in 0 ..< rows {
                    for c in 0 ..< cols {
                        let t = Double(input[r * ldi + c]) / (largest / 127)
                        let got = transpose != 0 ? out[c * ldo + r] : out[r * ldo + c]
                        // x·(1/scale): the scale, its reciprocal and the product each round once.
                        check.check(Int(got), unrounded: t, slack: abs(t) * 3.5 * floatRoundoff,
                                    at: "\(rows)x\(cols) transpose \(transpose) (\(r), \(c))")
                    }
                }
                let stored = transpose != 0 ? cols : rows, used = transpose != 0 ? rows : cols
                for s in 0 ..< stored { for k in used ..< ldo { XCTAssertEqual(out[s * ldo + k], 99, "wrote past its rows") } }
                var sums = [Int32](repeating: 0, count: stored)
                ck_row_sums_s8(out, stored, used, ldo, -3, &sums)
                for s in 0 ..< stored {
                    XCTAssertEqual(sums[s], -3 * out[s * ldo ..< s * ldo + used].reduce(Int32(0)) { $0 + Int32($1) })
                }
            }
        }
        check.assertPassed()
    }
}
