import Foundation
import MTLSegCore
import MTLSegTestSupport
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
        let (status, output) = try runProcess(CommandLine.arguments[0], [test],
                                              environment: Dictionary(uniqueKeysWithValues: settings.map { ($0.name, $0.value) }))
        let described = settings.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        print("\(test) ran again with \(described): exit status \(status)")
        XCTAssertTrue(status == 0 && output.contains("Executed 1 test, with 0 failures"),
                      "\(test) with \(described) (as mtlseg and mtlsegd run OpenBLAS) failed:\n\(output.suffix(4000))", file: file, line: line)
        return true
    }
}
