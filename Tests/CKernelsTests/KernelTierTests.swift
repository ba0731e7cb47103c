import CKernels
import Foundation
import XCTest

/// The definition tests once more under every kernel tier this CPU runs. A process chooses its
/// operations' versions once, from the CPU and MTLSEG_KERNELS, so each tier runs in a child process
/// of this test binary, with MTLSEG_KERNELS set to it.
final class KernelTierTests: XCTestCase {
    private static let definitionTests = [
        "CKernelsTests.AttentionKernelDefinitionTests",
        "CKernelsTests.GateConcatDefinitionTests",
        "CKernelsTests.NormalizationAndActivationDefinitionTests",
        "CKernelsTests.ResizeAndClassMapDefinitionTests",
    ]

    private func tiers() -> [String] {
        var sets = [UnsafePointer<ck_qgemm_kernels>?](repeating: nil, count: 8)
        let count = ck_qgemm_available(&sets, sets.count)
        return sets.prefix(count).compactMap { $0.map { String(cString: $0.pointee.isa) } }
    }

    func testDefinitionsHoldOnEveryTier() throws {
        if let cap = ProcessInfo.processInfo.environment["MTLSEG_KERNELS"] {
            // A child, or a run capped by hand: a tier the CPU runs must be the one dispatched.
            if tiers().contains(cap) { XCTAssertEqual(String(cString: ck_qgemm_select().pointee.isa), cap) }
            throw XCTSkip("MTLSEG_KERNELS=\(cap): this process runs that tier only")
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0])
        let available = tiers()
        XCTAssertEqual(available.last, "scalar", "the portable versions run everywhere")
        for tier in available {
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-kernel-tier-\(getpid())-\(tier).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: log) }
            let output = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = binary
            process.arguments = [Self.definitionTests.joined(separator: ",")]
            var environment = ProcessInfo.processInfo.environment
            environment["MTLSEG_KERNELS"] = tier
            process.environment = environment
            process.standardOutput = output
            process.standardError = output
            try process.run()
            // Polled against a deadline: a hung child fails the test instead of stalling the suite.
            let deadline = Date().addingTimeInterval(600)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            try output.close()
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n")
            let executed = lines.filter { $0.contains("Executed") }.last.map(String.init) ?? "no summary"
            print("MTLSEG_KERNELS=\(tier): \(executed)")
            for line in lines where line.contains(" outputs") { print("  \(line)") }
            XCTAssertEqual(process.terminationStatus, 0, "MTLSEG_KERNELS=\(tier): the definition tests failed:\n\(text)")
            // Ran something: tests that all skipped (XCTest: "Executed 5 tests, with 5 tests skipped and 0 failures") checked
            // this tier no more than none at all.
            let counts = executed.split(separator: " ").compactMap { Int($0) }
            let (ran, skipped) = (counts.first ?? 0, executed.contains("skipped") ? counts.dropFirst().first ?? 0 : 0)
            XCTAssertGreaterThan(ran - skipped, 0, "MTLSEG_KERNELS=\(tier) ran no tests (\(executed)):\n\(text)")
        }
    }
}
