import Foundation
import XCTest

/// `mtlseg bench`'s report (not its timings, which are no test): for an int8 model with task heads it holds the
/// heads against the dot-product instruction this CPU has, which on x86 the test learns from the kernel.
final class BenchCommandTests: XCTestCase {
    private static let demoModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("calibration/demo/crops-int8.safetensors").path

    func testInt8HeadsAreHeldAgainstTheDotProductInstructionThisCPUHas() throws {
        for fp32 in [false, true] {
            let result = try ToolRunner.run(["bench", "--model", Self.demoModel, "--size", "64x64", "--iterations", "2", "--json"]
                + (fp32 ? ["--fp32"] : []))
            XCTAssertEqual(result.status, 0, result.errors)
            let lines = result.output.split(separator: "\n")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data((lines.last ?? "").utf8)) as? [String: Any], result.output)
            let heads = try XCTUnwrap(lines.first { $0.hasPrefix("heads ") }, result.output)
            let instruction = try XCTUnwrap(report["dot_ceiling_instruction"] as? String)
            let ceiling = try XCTUnwrap(report["dot_ceiling_gmac_per_s_per_core"] as? Double)
            // The fp32 engine's products are no 8-bit ones: no ceiling for them.
            if fp32 { XCTAssertEqual(instruction, "") }
            #if arch(x86_64)
            if !fp32 { XCTAssertEqual(instruction, Self.x86DotProductInstruction() ?? "") }
            #endif
            if instruction.isEmpty {
                XCTAssertEqual(ceiling, 0, "fp32: \(fp32)")
                XCTAssertFalse(heads.contains("ceiling"), String(heads))
            } else {
                XCTAssertGreaterThan(ceiling, 0)
                XCTAssertTrue(heads.contains("% of the ceiling of 1 core") && heads.contains("by \(instruction) back to back"), String(heads))
            }
        }
    }

    /// The widest 8-bit dot-product instruction of this x86 CPU, from the flags the kernel lists in /proc/cpuinfo.
    private static func x86DotProductInstruction() -> String? {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })?.split(separator: " ").map(String.init)
        else { return nil }
        if flags.contains("avx512_vnni") && flags.contains("avx512bw") { return "vpdpbusd zmm" }
        if flags.contains("avx_vnni") { return "vpdpbusd ymm" }
        return nil
    }
}
