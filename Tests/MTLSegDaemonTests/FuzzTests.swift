import Foundation
import XCTest
import MTLSegTestSupport

/// The libFuzzer targets (Sources/mtlseg-fuzz): every corpus input and every input that once
/// crashed is replayed by the plain build, and a short fuzzing run of each target (built with
/// -sanitize=fuzzer by Tests/Fuzz/run.sh) must find nothing.
final class FuzzTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static var products: URL {
        var url = Bundle(for: FuzzTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url
    }


    func testCorpusAndPastCrashesReplayCleanly() throws {
        let fuzz = Self.repository.appendingPathComponent("Tests/Fuzz")
        for target in ["wire", "config", "model"] {
            var inputs = try FileManager.default.contentsOfDirectory(atPath: fuzz.appendingPathComponent("corpus/\(target)").path)
                .map { fuzz.appendingPathComponent("corpus/\(target)/\($0)").path }
            inputs += try FileManager.default.contentsOfDirectory(atPath: fuzz.appendingPathComponent("crashes").path)
                .filter { $0.hasPrefix(target + "-") }.map { fuzz.appendingPathComponent("crashes/\($0)").path }
            XCTAssertFalse(inputs.isEmpty)
            let result = try runProcess(Self.products.appendingPathComponent("mtlseg-fuzz").path, [target] + inputs)
            XCTAssertEqual(result.status, 0, "\(target): \(result.output)")
        }
    }

    func testShortFuzzingRunsFindNothing() throws {
        let seconds = ProcessInfo.processInfo.environment["MTLSEG_FUZZ_SECONDS"] ?? "20"
        let result = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("Tests/Fuzz/run.sh").path, seconds],
                             environment: ["SWIFT_BACKTRACE": "enable=no"])
        XCTAssertEqual(result.status, 0, result.output)
        for target in ["wire", "config", "model"] {
            XCTAssertTrue(result.output.contains("\(target): ") && result.output.contains("no crash"), result.output)
        }
        print(result.output)
    }
}
