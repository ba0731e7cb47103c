import Foundation
import MTLSegCore
import XCTest

extension XCTestCase {
    /// OpenBLAS chooses its kernels once, when it loads, from the environment; mtlseg and mtlsegd set what
    /// it lacks (BLASEnvironment) and start themselves again before it matters, which a test bundle cannot.
    /// Where this process lacks the core type the tools set (an AVX-512 x86, an AArch64 CPU with SME), the
    /// calling test runs again in a child process of this bundle with the tools' settings, and its result
    /// is this test's: true is returned and the caller returns. False: this process has OpenBLAS as the
    /// tools have it, and the caller goes on.
    func ranAgainWithTheToolsBLASEnvironment(_ function: String = #function, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let settings = BLASEnvironment.missingSettings()
        guard settings.contains(where: { $0.name == "OPENBLAS_CORETYPE" }) else { return false }
        let method = function.hasSuffix("()") ? String(function.dropLast(2)) : function
        let test = "\(String(reflecting: type(of: self)))/\(method)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [test]
        process.environment = ProcessInfo.processInfo.environment.merging(settings.map { ($0.name, $0.value) }) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let described = settings.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        print("\(test) ran again with \(described): exit status \(process.terminationStatus)")
        XCTAssertTrue(process.terminationStatus == 0 && output.contains("Executed 1 test, with 0 failures"),
                      "\(test) with \(described) (as mtlseg and mtlsegd run OpenBLAS) failed:\n\(output.suffix(4000))", file: file, line: line)
        return true
    }
}
