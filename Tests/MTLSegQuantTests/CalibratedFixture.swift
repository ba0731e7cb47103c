import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// A committed fixture model quantized for the int8 engine's tests.
enum CalibratedFixture {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    struct Setup {
        let fp32: MTLSegFormerWeights
        let model: QuantizedModel
        let inputs: [FloatBuffer]
        let height: Int
        let width: Int
    }

    /// The fixture calibrated on its reference input and a few variations of it.
    static func make(_ name: String, reference: String) throws -> Setup {
        let source = try ModelSource(path: Self.fixtures.appendingPathComponent(name).path)
        let fp32 = try MTLSegFormerWeights(source: source)
        let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent(reference).path)
        let pixels = try file.floats(try XCTUnwrap(file.entry("pixel_values")))
        let shape = file.entry("pixel_values")!.shape
        let (height, width) = (shape[2], shape[3])
        // Variations: flipped, darkened and shifted copies of the reference image.
        var inputs = [pixels]
        for variant in 1 ... 5 {
            let copy = FloatBuffer(count: pixels.count)
            for i in 0 ..< pixels.count {
                let x = i % width
                let mirrored = i - x + (variant % 2 == 0 ? width - 1 - x : x)
                copy[i] = pixels[mirrored] * (1 - 0.1 * Float(variant)) + 0.05 * Float(variant)
            }
            inputs.append(copy)
        }
        let calibrator = Calibrator(weights: fp32, width: width, height: height)
        let statistics = calibrator.measure(count: inputs.count) { i, target in
            target.update(from: inputs[i].pointer, count: inputs[i].count)
            return true
        }
        let info = CalibrationInfo(method: "minmax", images: inputs.count, width: width, height: height, sourceModel: name, createdAt: "test")
        return Setup(fp32: fp32, model: QuantizedModel(fp32: fp32, statistics: statistics, calibration: info), inputs: inputs,
                     height: height, width: width)
    }
}
