import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// The int8 GEMM's requantizing epilogue against its definition in double precision. QGemmTests
/// holds every kernel set to the scalar reference bit for bit; this holds the reference, and every
/// set with it, to the arithmetic the engine means: C = (Σ_k (a − zero_point)·b)·scale + bias, ReLU,
/// stored as float, added to C, or quantized to u8.
final class QGemmEpilogueDefinitionTests: XCTestCase {
    func testEpilogueFollowsTheAsymmetricProduct() {
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0401))
        var sets = [UnsafePointer<ck_qgemm_kernels>?](repeating: nil, count: 8)
        let count = ck_qgemm_available(&sets, sets.count)
        let available = sets.prefix(count).compactMap { $0 }
        XCTAssertFalse(available.isEmpty)
        var floats = FloatOutputCheck("qgemm epilogue, float outputs")
        var bytes = QuantizedOutputCheck("qgemm epilogue, u8 outputs")
        for (m, n, k) in [(1, 1, 1), (9, 17, 5), (33, 64, 147), (8, 33, 64), (3, 16, 1000)] {
            let lda = (k + 3) / 4 * 4 + 3, ldb = k + 1, ldc = n + 2
            let a = (0 ..< m * lda).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            let b = (0 ..< n * ldb).map { _ in Int8.random(in: -127 ... 127, using: &rng) }
            let zeroPoint = Int.random(in: 0 ... 255, using: &rng)
            let columnSums = (0 ..< n).map { j in (0 ..< k).reduce(0) { $0 + Int(b[j * ldb + $1]) } }
            // Scales that put the u8 outputs across the byte range: the sums' spread grows as √k·74·73.
            let scale = (0 ..< n).map { _ in Float((0.5 + rng.unit()) / (5000 * Double(k).squareRoot())) }
            let bias = (0 ..< n).map { _ in rng.normal() }
            let start = (0 ..< m * ldc).map { _ in rng.normal() }
            let inverseOutScale: Float = 1 / 0.02, outZeroPoint: Int32 = 100
            // The exact products, and the value each output should hold.
            var sums = [Int](repeating: 0, count: m * n)
            for i in 0 ..< m { for j in 0 ..< n { for kk in 0 ..< k { sums[i * n + j] += (Int(a[i * lda + kk]) - zeroPoint) * Int(b[j * ldb + kk]) } } }
            let candidates: [UnsafePointer<ck_qgemm_kernels>?] = [nil] + available // nil: ck_qgemm_reference on unpacked B
            for set in candidates {
                let name = set.map { String(cString: $0.pointee.name) } ?? "reference"
                for output in [CK_QGEMM_OUT_F32, CK_QGEMM_OUT_F32_ACCUMULATE, CK_QGEMM_OUT_U8] {
                    for relu in [Int32(0), 1] {
                        let shift = set.map { Int($0.pointee.a_shift) } ?? 0
                        let offset = columnSums.map { Int32($0 * (zeroPoint - shift)) }
                        var c = output == CK_QGEMM_OUT_U8 ? [UInt8](repeating: 0xAB, count: m * ldc) : []
                        var cf = output == CK_QGEMM_OUT_F32_ACCUMULATE ? start : [Float](repeating: .nan, count: m * ldc)
                        offset.withUnsafeBufferPointer { offset in
                            scale.withUnsafeBufferPointer { scale in
                                bias.withUnsafeBufferPointer { bias in
                                    var ep = ck_qgemm_epilogue(offset: offset.baseAddress, scale: scale.baseAddress, bias: bias.baseAddress,
                                                               relu: relu, output: output, out_scale_inv: inverseOutScale,
                                                               out_zero_point: outZeroPoint)
                                    func run(_ out: UnsafeMutableRawPointer) {
                                        if let kernels = set?.pointee {
                                            let packed = UnsafeMutableRawPointer.allocate(byteCount: max(kernels.packed_size(n, k), 1), alignment: 64)
                                            defer { packed.deallocate() }
                                            kernels.pack(b, n, k, ldb, packed)
                                            kernels.gemm(m, n, k, a, lda, packed, &ep, out, ldc)
                                        } else {
                                            ck_qgemm_reference(m, n, k, a, lda, b, ldb, &ep, out, ldc)
                                        }
                                    }
                                    if output == CK_QGEMM_OUT_U8 { c.withUnsafeMutableBytes { run($0.baseAddress!) } }
                                    else { cf.withUnsafeMutableBytes { run($0.baseAddress!) } }
                                }
                            }
                        }
                        for i in 0 ..< m {
                            for j in 0 ..< n {
                                let product = Double(sums[i * n + j]) * Double(scale[j])
                                var v = product + Double(bias[j])
                                if relu != 0 { v = max(v, 0) }
                                // (float)sum (exact below 2²⁴, else ε), ·scale and +bias one rounding each.
                                let bound = floatRoundoff * (3 * abs(product) + 2 * abs(Double(bias[j])))
                                let place = "\(name) \(m)x\(n)x\(k) output \(output.rawValue) relu \(relu) (\(i), \(j))"
                                switch output {
                                case CK_QGEMM_OUT_F32:
                                    floats.check(cf[i * ldc + j], definition: v, bound: bound + 1e-38, at: place)
                                case CK_QGEMM_OUT_F32_ACCUMULATE:
                                    let total = Double(start[i * ldc + j]) + v
                                    floats.check(cf[i * ldc + j], definition: total, bound: bound + floatRoundoff * abs(total) + 1e-38, at: place)
                                default:
                                    let t = v * Double(inverseOutScale)
                                    bytes.check(Int(c[i * ldc + j]), unrounded: t, zeroPoint: Int(outZeroPoint),
                                                slack: bound * Double(inverseOutScale) + abs(t) * floatRoundoff, at: place)
                                }
                            }
                        }
                        if output == CK_QGEMM_OUT_U8 {
                            XCTAssertEqual(bytesPastRows(c, rows: m, columns: n, stride: ldc, sentinel: 0xAB), 0, "\(name) wrote past its columns")
                        }
                    }
                }
            }
        }
        floats.assertPassed()
        bytes.assertPassed()
    }
}
