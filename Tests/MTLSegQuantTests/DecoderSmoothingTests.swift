import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// Smoothing the stage outputs and the fused map into the norms and layers around them: the fp32 function must not change.
final class DecoderSmoothingTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    func testSmoothingLeavesTheFP32FunctionUnchanged() throws {
        // One task (the classifier reads the fused map) and two (the task maps do).
        for name in ["mtl2-tiny", "segformer-tiny"] {
            let weights = try MTLSegFormerWeights(source: try ModelSource(path: Self.fixtures.appendingPathComponent(name + ".safetensors").path))
            let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent(name + ".reference.safetensors").path)
            let shape = file.entry("pixel_values")!.shape
            let input = try file.floats(try XCTUnwrap(file.entry("pixel_values")))
            let engine = FP32Engine(weights: weights, height: shape[2], width: shape[3])
            let ranges = ChannelRangeObserver(points: DecoderSmoothing.points(of: weights))
            engine.observer = ranges
            engine.run(input: input.pointer)
            let before = engine.logits.map(\.values)
            XCTAssertEqual(Set(ranges.largest.keys), DecoderSmoothing.points(of: weights))

            // Ranges made deliberately uneven, so that every point smooths with large scales.
            var uneven = ranges.largest
            for key in uneven.keys { uneven[key] = uneven[key]!.enumerated().map { $1 * (1 + 20 * Float($0 % 3)) } }
            let (smoothed, choices) = DecoderSmoothing.smoothing(weights, ranges: uneven)
            XCTAssertEqual(choices.count, weights.stages.count + 1)
            XCTAssertTrue(choices.allSatisfy { $0.alpha > 0 }, "\(choices)")
            // The weights really changed: every stage's closing norm, the decoder's bias, the projections, the embeddings
            // after the first stage, and the fused map's readers…
            for (a, b) in zip(weights.stages, smoothed.stages) { XCTAssertNotEqual(a.norm.gamma.array, b.norm.gamma.array) }
            XCTAssertNotEqual(weights.decoder.bias.array, smoothed.decoder.bias.array)
            let changed = Set(zip(weights.int8Layers, smoothed.int8Layers).filter { $0.weight.array != $1.weight.array }.map(\.0.name))
            let readers = weights.classifier.map { [$0.name] } ?? weights.heads.map(\.taskMap.name)
            let expected = Set(weights.decoder.stageProjections.map(\.name) + readers
                + weights.stages.indices.filter { weights.int8EmbeddingStages.contains($0) }.map { weights.stages[$0].patchEmbedding.name })
            XCTAssertEqual(changed, expected)
            let embeddings = zip(weights.stages.dropFirst(), smoothed.stages.dropFirst())
            XCTAssertTrue(embeddings.allSatisfy { $0.patchEmbedding.weight.array != $1.patchEmbedding.weight.array })
            // …and the function did not.
            let after = FP32Engine(weights: smoothed, height: shape[2], width: shape[3])
            after.run(input: input.pointer)
            for (a, b) in zip(before, after.logits.map(\.values)) {
                let scale = a.map { abs($0) }.max()!
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * scale + 1e-6, name) }
            }
        }
    }

    func testSmoothingSitesParseAndPrint() {
        XCTAssertEqual(SmoothingSites(parsing: "none"), [])
        XCTAssertEqual(SmoothingSites(parsing: "decoder"), .decoder)
        XCTAssertEqual(SmoothingSites(parsing: "attention,decoder"), [.attention, .decoder])
        XCTAssertEqual(SmoothingSites(parsing: "decoder,attention")?.description, "attention,decoder")
        XCTAssertNil(SmoothingSites(parsing: "decoder,"))
        XCTAssertNil(SmoothingSites(parsing: "layernorm"))
        XCTAssertEqual(SmoothingSites().description, "none")
    }
}
