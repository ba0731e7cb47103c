import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// Decoder projections that read their stage's output at 16 bits (`QuantizationRecord.wideDecoderInputs`).
final class WideDecoderInputTests: XCTestCase {
    private func logits(_ engine: SegmentationEngine, _ input: FloatBuffer) -> [[Float]] {
        engine.run(input: input.pointer)
        return engine.logits.map(\.values)
    }

    /// The model with the deepest stages' projections in fp32, read at 16 bits (`wide`) or from the u8 grid as before.
    private func widening(_ setup: CalibratedFixture.Setup, stages: [Int], wide: Bool) -> QuantizedModel {
        let model = setup.model.fallingBack(Set(stages.map { setup.fp32.decoder.stageProjections[$0].name }), fp32: setup.fp32)
        var record = model.record
        if wide { record.wideDecoderInputs = stages }
        return QuantizedModel(weights: model.weights, record: record)
    }

    func testAWideInputRemovesTheU8GridsError() throws {
        for (name, reference) in [("segformer-tiny.safetensors", "segformer-tiny.reference.safetensors"),
                                  ("mtl2-tiny.safetensors", "mtl2-tiny.reference.safetensors")] {
            let setup = try CalibratedFixture.make(name, reference: reference)
            let fp32 = FP32Engine(weights: setup.fp32, height: setup.height, width: setup.width)
            let stages = [2, 3]
            let narrow = try widening(setup, stages: stages, wide: false).makeEngine(height: setup.height, width: setup.width, threads: 2)
            let wide = try widening(setup, stages: stages, wide: true).makeEngine(height: setup.height, width: setup.width, threads: 2)
            var narrowError = 0.0, wideError = 0.0
            for input in setup.inputs {
                let expected = logits(fp32, input), a = logits(narrow, input), b = logits(wide, input)
                for t in expected.indices {
                    for i in expected[t].indices {
                        narrowError += pow(Double(a[t][i] - expected[t][i]), 2)
                        wideError += pow(Double(b[t][i] - expected[t][i]), 2)
                    }
                }
            }
            // Same weights, same grids elsewhere: only the two stage outputs' u8 rounding is gone.
            XCTAssertLessThan(wideError, narrowError, name)
            XCTAssertGreaterThan(wideError, 0, "\(name): the rest of the network is still int8")
        }
    }

    func testWideInputsSurviveTheFile() throws {
        let setup = try CalibratedFixture.make("mtl2-tiny.safetensors", reference: "mtl2-tiny.reference.safetensors")
        let model = widening(setup, stages: [3], wide: true)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-wide-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Int8ModelWriter.write(model, to: path)
        let source = try ModelSource(path: path)
        XCTAssertEqual(source.quantization?.wideDecoderInputs, [3])
        XCTAssertEqual(source.file.entry(FusedDecoderWeights.projectionName(3) + ".weight")?.dtype, .F32)
        XCTAssertEqual(source.file.entry(FusedDecoderWeights.projectionName(2) + ".weight")?.dtype, .I8)
        let loaded = try EngineFactory.make(source: source, height: setup.height, width: setup.width, threads: 1)
        let direct = try model.makeEngine(height: setup.height, width: setup.width, threads: 1)
        for input in setup.inputs.prefix(2) { XCTAssertEqual(logits(loaded, input), logits(direct, input)) }
    }

    func testAWideInputNeedsALowResolutionStageWithFP32Weights() throws {
        let setup = try CalibratedFixture.make("segformer-tiny.safetensors", reference: "segformer-tiny.reference.safetensors")
        let grids = try setup.model.record.grids(for: setup.model.weights.description)
        // The first stage's projection runs banded at full resolution: never wide.
        XCTAssertThrowsError(try Int8Engine(weights: widening(setup, stages: [1], wide: false).weights, activations: grids,
                                            height: setup.height, width: setup.width, wideDecoderInputs: [0])) { error in
            XCTAssertTrue(String(describing: error).contains("wide_decoder_inputs"), "\(error)")
        }
        // A file whose projection is int8 cannot read its input wide: no fp32 weights.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-narrow-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Int8ModelWriter.write(setup.model, to: path)
        let weights = try MTLSegFormerWeights(source: try ModelSource(path: path), floatWeights: false)
        XCTAssertThrowsError(try Int8Engine(weights: weights, activations: grids, height: setup.height, width: setup.width,
                                            wideDecoderInputs: [3])) { error in
            XCTAssertTrue(String(describing: error).contains(FusedDecoderWeights.projectionName(3)), "\(error)")
        }
    }
}
