import Foundation
import XCTest
@testable import MTLSegCore

/// The committed fixtures made by calibration/make_fixtures.py (PyTorch + HF transformers).
enum Fixtures {
    static var directory: String {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
    }

    static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The reference: the input it was run on and its logits per task.
    struct Reference {
        let input: FloatBuffer
        let height: Int
        let width: Int
        let logits: [String: (shape: [Int], values: [Float])]
    }

    static func reference(_ name: String) throws -> Reference {
        let file = try SafeTensorsFile(path: path(name))
        let pixels = try XCTUnwrap(file.entry("pixel_values"))
        var logits: [String: (shape: [Int], values: [Float])] = [:]
        for entry in file.entries where entry.name.hasPrefix("logits.") {
            logits[String(entry.name.dropFirst("logits.".count))] = (entry.shape, try file.floats(entry).array)
        }
        return Reference(input: try file.floats(pixels), height: pixels.shape[2], width: pixels.shape[3], logits: logits)
    }
}
