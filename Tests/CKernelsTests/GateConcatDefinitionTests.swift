import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// ck_gate_concat_u8, MTLSegFormer's cross-task gates writing the combine conv's u8 input (the version this process's
/// dispatch runs; KernelTierTests runs this again under every tier the CPU has): bit for bit the portable version,
/// and within float rounding of the definition in double,
///   [q(F_t) | q(Σ_g sigmoid(w_self·F_t + w_other·F_j + b)·F_j)].
final class GateConcatDefinitionTests: XCTestCase {
    func testGatesFollowTheDefinitionAndThePortableVersion() {
        let seed = testSeed(#function, fallback: 0x5EED_0615)
        var rng = SplitMix64(seed: seed)
        print("GateConcatDefinitionTests seed \(seed)")
        // (pixels, channels, gates): the demo's width with one and two gates, pixel counts that are no multiple of
        // the kernel's chunk or pair, widths that are no multiple of 64 or 16.
        let shapes = [(64, 256, 1), (37, 256, 2), (9, 100, 1), (5, 7, 3), (17, 64, 1), (3, 300, 2), (1, 32, 1)]
        var check = QuantizedOutputCheck("gate concatenation")
        for (pixels, channels, gates) in shapes {
            // One buffer, F_t in the first `channels` columns, F_j of gate g in the next ones, rows padded past them.
            let ld = (gates + 1) * channels + 5
            let maps = (0 ..< pixels * ld).map { _ in max(0, rng.normal() * 2 + 0.5) } // task maps are ReLU outputs
            // Gate g's weights in row g.
            let selfWeights = (0 ..< gates * channels).map { _ in rng.normal() * 0.15 }
            let otherWeights = (0 ..< gates * channels).map { _ in rng.normal() * 0.15 }
            let bias = (0 ..< gates).map { _ in rng.normal() * 0.5 }
            let inverseScale: Float = 255 / 7, zeroPoint: Int32 = 4
            let ldo = 2 * channels + 3, sentinel: UInt8 = 0xA5
            var fast = [UInt8](repeating: sentinel, count: pixels * ldo), portable = fast
            var scratch = [Float](repeating: .nan, count: Int(CK_GATE_CHUNK) * gates)
            maps.withUnsafeBufferPointer { m in
                selfWeights.withUnsafeBufferPointer { ws in
                    otherWeights.withUnsafeBufferPointer { wo in
                        let base = m.baseAddress!
                        let others: [UnsafePointer<Float>?] = (0 ..< gates).map { base + ($0 + 1) * channels }
                        let selfRows: [UnsafePointer<Float>?] = (0 ..< gates).map { ws.baseAddress! + $0 * channels }
                        let otherRows: [UnsafePointer<Float>?] = (0 ..< gates).map { wo.baseAddress! + $0 * channels }
                        ck_gate_concat_u8(base, others, ld, pixels, channels, gates, selfRows, otherRows, bias, inverseScale, zeroPoint,
                                          &fast, ldo, &scratch)
                        ck_gate_concat_u8_portable(base, others, ld, pixels, channels, gates, selfRows, otherRows, bias, inverseScale,
                                                   zeroPoint, &portable, ldo, &scratch)
                    }
                }
            }
            let label = "\(pixels) pixels × \(channels) channels, \(gates) gates"
            XCTAssertEqual(fast, portable, "\(label): the dispatched version differs from the portable one")
            XCTAssertEqual(bytesPastRows(fast, rows: pixels, columns: 2 * channels, stride: ldo, sentinel: sentinel), 0,
                           "\(label): bytes written past the rows")
            let eps = floatRoundoff, inv = Double(inverseScale)
            for p in 0 ..< pixels {
                func value(_ map: Int, _ c: Int) -> Double { Double(maps[p * ld + map * channels + c]) }
                // F_t: one float product x·inv before the rounding.
                for c in 0 ..< channels {
                    let t = value(0, c) * inv
                    check.check(Int(fast[p * ldo + c]), unrounded: t, zeroPoint: Int(zeroPoint), slack: abs(t) * eps,
                                at: "\(label), pixel \(p), F_t channel \(c)")
                }
                // The gates: a float sum of 2·channels products in 64 lanes (each lane's chain, then six halvings) errs
                // by at most (2·channels/64 + 8)·ε·Σ|terms|, the bias's addition by ε·|s|; sigmoid's slope is at most
                // ¼; exp (2 ulp), the addition of 1 and the division add about 5ε·a.
                var a: [Double] = [], aError: [Double] = []
                for g in 0 ..< gates {
                    var s = Double(bias[g]), magnitude = 0.0
                    for c in 0 ..< channels {
                        let own = Double(selfWeights[g * channels + c]) * value(0, c)
                        let other = Double(otherWeights[g * channels + c]) * value(g + 1, c)
                        s += own + other
                        magnitude += abs(own) + abs(other)
                    }
                    let gate = 1 / (1 + exp(-s))
                    a.append(gate)
                    aError.append((Double(2 * channels / 64 + 8) * eps * magnitude + eps * abs(s)) / 4 + 5 * eps * gate)
                }
                for c in 0 ..< channels {
                    var cross = 0.0, error = 0.0
                    for g in 0 ..< gates {
                        cross += a[g] * value(g + 1, c)
                        error += aError[g] * value(g + 1, c) + Double(g + 1) * eps * a[g] * value(g + 1, c)
                    }
                    let t = cross * inv
                    check.check(Int(fast[p * ldo + channels + c]), unrounded: t, zeroPoint: Int(zeroPoint), slack: error * inv + abs(t) * eps,
                                at: "\(label), pixel \(p), G_t channel \(c)")
                }
            }
        }
        check.assertPassed()
    }
}
