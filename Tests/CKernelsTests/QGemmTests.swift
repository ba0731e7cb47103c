import CKernels
import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest

/// The int8 GEMM kernel sets against the exact scalar reference. The wide sweep,
/// sanitizers and the AArch64 sets under qemu live in Tests/CKernelsHarness/run.sh,
/// which the last test runs.
final class QGemmTests: XCTestCase {
    private func availableSets() -> [UnsafePointer<ck_qgemm_kernels>] {
        var sets = [UnsafePointer<ck_qgemm_kernels>?](repeating: nil, count: 8)
        let count = ck_qgemm_available(&sets, sets.count)
        return sets.prefix(count).compactMap { $0 }
    }

    /// Every set equals ck_qgemm_reference bit for bit, across tile edges and all outputs.
    func testEverySetMatchesReference() throws {
        let sets = availableSets()
        XCTAssertFalse(sets.isEmpty)
        XCTAssertEqual(String(cString: sets.last!.pointee.isa), "scalar", "the scalar set runs everywhere")
        var rng = SplitMix64(seed: testSeed(#function, fallback: 0x5EED_0006))
        var checked = 0
        for m in [1, 7, 8, 9, 33] {
            for n in [1, 2, 4, 5, 15, 16, 17, 33, 64] { // (≤ 4: the AVX-512 VNNI set's few-columns path)
                for k in [1, 3, 4, 5, 33, 147] {
                    for output in [CK_QGEMM_OUT_F32, CK_QGEMM_OUT_F32_ACCUMULATE, CK_QGEMM_OUT_U8] {
                        let lda = (k + 3) / 4 * 4 + 3, ldb = k + 1, ldc = n + 2
                        let a = (0..<m * lda).map { _ in UInt8.random(in: 0...255, using: &rng) }
                        // Half the problems with weights as the project's quantizers write them, in [−127, 127]:
                        // neon-4x16c2 takes a faster path for those (two products summed in 16 bits).
                        let noMin = Bool.random(using: &rng)
                        let b = (0..<n * ldb).map { _ in Int8.random(in: (noMin ? -127 : -128)...127, using: &rng) }
                        let scale = (0..<n).map { _ in Float.random(in: 1e-5...1e-2, using: &rng) }
                        let bias = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
                        let colSums = (0..<n).map { j in (0..<k).reduce(Int32(0)) { $0 + Int32(b[j * ldb + $1]) } }
                        let zeroPoint = Int32.random(in: 0...255, using: &rng)
                        let offset = colSums.map { zeroPoint &* $0 }
                        let relu: Int32 = Bool.random(using: &rng) ? 1 : 0
                        let elementBytes = output == CK_QGEMM_OUT_U8 ? 1 : 4
                        let start = (0..<m * ldc * elementBytes).map { _ in UInt8.random(in: 0...63, using: &rng) }

                        let expected = run(offset: offset, scale: scale, bias: bias, relu: relu, output: output,
                                           start: start) { ep, c in
                            ck_qgemm_reference(m, n, k, a, lda, b, ldb, ep, c, ldc)
                        }
                        for set in sets {
                            let kernels = set.pointee
                            let packedBytes = kernels.packed_size(n, k)
                            let packed = UnsafeMutableRawPointer.allocate(byteCount: max(packedBytes, 1), alignment: 64)
                            defer { packed.deallocate() }
                            kernels.pack(b, n, k, ldb, packed)
                            let shifted = zip(offset, colSums).map { $0 &- kernels.a_shift &* $1 }
                            let got = run(offset: shifted, scale: scale, bias: bias, relu: relu, output: output,
                                          start: start) { ep, c in
                                kernels.gemm(m, n, k, a, lda, packed, ep, c, ldc)
                            }
                            XCTAssertEqual(got, expected, "\(String(cString: kernels.name)) m=\(m) n=\(n) k=\(k) output=\(output.rawValue) weights from \(noMin ? -127 : -128)")
                            checked += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(checked, 5 * 9 * 6 * 3 * sets.count)
    }

    /// Runs `body` on C initialised to `start` and returns C's bytes.
    private func run(offset: [Int32], scale: [Float], bias: [Float], relu: Int32, output: ck_qgemm_output,
                     start: [UInt8],
                     _ body: (UnsafePointer<ck_qgemm_epilogue>, UnsafeMutableRawPointer) -> Void) -> [UInt8] {
        var c = start
        offset.withUnsafeBufferPointer { offset in
            scale.withUnsafeBufferPointer { scale in
                bias.withUnsafeBufferPointer { bias in
                    var ep = ck_qgemm_epilogue(offset: offset.baseAddress, scale: scale.baseAddress,
                                               bias: bias.baseAddress, relu: relu, output: output,
                                               out_scale_inv: 7.5, out_zero_point: 100)
                    c.withUnsafeMutableBytes { body(&ep, $0.baseAddress!) }
                }
            }
        }
        return c
    }

    /// Dispatch picks the best tier this CPU has.
    func testSelectsBestTier() throws {
        guard ProcessInfo.processInfo.environment["MTLSEG_KERNELS"] == nil else {
            throw XCTSkip("MTLSEG_KERNELS is set; the choice is capped")
        }
        let selected = String(cString: ck_qgemm_select().pointee.isa)
        XCTAssertEqual(selected, String(cString: availableSets()[0].pointee.isa))
        // Under qemu-user /proc/cpuinfo describes the host, not the emulated CPU: read it only for the CPU we run on.
        #if arch(x86_64)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        #else
        let cpuinfo = ""
        #endif
        let flags = Set(cpuinfo.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        if flags.contains("avx512_vnni") && flags.contains("avx512bw") {
            XCTAssertEqual(selected, "avx512vnni")
        } else if flags.contains("avx_vnni") {
            XCTAssertEqual(selected, "avxvnni")
        } else if flags.contains("asimddp") {
            XCTAssertEqual(selected, "neondot")
        }
    }

    /// The C harness: wide sweep under ASan/UBSan, MTLSEG_KERNELS caps, and the
    /// AArch64 sets under qemu (with and without dotprod).
    func testHarnessIncludingQemu() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("CKernelsHarness/run.sh")
        let (status, log) = try runProcess("/bin/bash", [script.path])
        XCTAssertEqual(status, 0, "run.sh failed:\n\(log)")
    }
}
