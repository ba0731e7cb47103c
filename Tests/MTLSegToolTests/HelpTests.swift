import Foundation
import XCTest

/// `--help` of both tools, including mtlsegd as the Debian package ships it: a link named mtlsegd to mtlseg.
final class HelpTests: XCTestCase {
    func testMtlsegHelpPrintsTheUsage() throws {
        let result = try ToolRunner.run(["--help"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertTrue(result.output.contains("USAGE: mtlseg"), result.output)
    }

    func testMtlsegdByItsLinkPrintsTheDaemonsUsage() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mtlsegd-help-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("mtlsegd")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: ToolRunner.binary)

        let process = Process()
        process.executableURL = link
        process.arguments = ["--help"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, errors)
        XCTAssertTrue(output.contains("USAGE: mtlsegd") && output.contains("--check-config"), "stdout: \(output)\nstderr: \(errors)")
        XCTAssertFalse(errors.contains("CommandError"), errors)

        // --version by the link too: the daemon names its build as the tool does.
        let daemon = Process()
        daemon.executableURL = link
        daemon.arguments = ["--version"]
        let daemonOut = Pipe()
        daemon.standardOutput = daemonOut
        try daemon.run()
        let daemonVersion = String(decoding: daemonOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        daemon.waitUntilExit()
        let toolVersion = try ToolRunner.run(["--version"])
        XCTAssertEqual(daemon.terminationStatus, 0, daemonVersion)
        XCTAssertEqual(toolVersion.status, 0, toolVersion.errors)
        XCTAssertTrue(daemonVersion.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, daemonVersion)
        XCTAssertEqual(daemonVersion, toolVersion.output)
    }
}
