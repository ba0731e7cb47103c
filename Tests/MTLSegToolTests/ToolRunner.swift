import Foundation
import XCTest

/// Runs the `mtlseg` binary that SwiftPM built beside the test bundle.
enum ToolRunner {
    static var binary: URL {
        // The test bundle sits in the build products directory, next to the executables.
        // (On Linux the bundle URL is that directory itself; elsewhere it is the .xctest.)
        var products = Bundle(for: BundleMarker.self).bundleURL
        if products.pathExtension == "xctest" { products.deleteLastPathComponent() }
        return products.appendingPathComponent("mtlseg")
    }

    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      errors: String(decoding: errors, as: UTF8.self))
    }

    /// The committed model fixtures (made by calibration/make_fixtures.py).
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures").appendingPathComponent(name).path
    }
}

private final class BundleMarker {}

/// Reads a little-endian float32 .npy file: its shape and values.
func readNumpy(_ path: String) throws -> (shape: [Int], values: [Float]) {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let headerLength = Int(data[8]) | Int(data[9]) << 8
    let header = String(decoding: data[10 ..< 10 + headerLength], as: UTF8.self)
    XCTAssertTrue(header.contains("'descr': '<f4'"))
    let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
    let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let body = data[(10 + headerLength)...]
    let values = body.withUnsafeBytes { raw in
        (0 ..< raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
    return (shape, values)
}
