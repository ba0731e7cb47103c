import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// Smoothing attention's output into the value and output projections: the fp32 function must not change.
final class AttentionSmoothingTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    func testSmoothingLeavesTheFP32FunctionUnchanged() throws {
        for name in ["mtl2-tiny", "segformer-tiny"] {
            let weights = try MTLSegFormerWeights(source: try ModelSource(path: Self.fixtures.appendingPathComponent(name + ".safetensors").path))
            let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent(name + ".reference.safetensors").path)
            let shape = file.entry("pixel_values")!.shape
            let input = try file.floats(try XCTUnwrap(file.entry("pixel_values")))
            let engine = FP32Engine(weights: weights, height: shape[2], width: shape[3])
            let ranges = ChannelRangeObserver(points: AttentionSmoothing.points(of: weights))
            engine.observer = ranges
            engine.run(input: input.pointer)
            let before = engine.logits.map(\.values)
            XCTAssertEqual(Set(ranges.largest.keys), AttentionSmoothing.points(of: weights))

            // Ranges made deliberately uneven, so that every block smooths with large scales.
            var uneven = ranges.largest
            for key in uneven.keys { uneven[key] = uneven[key]!.enumerated().map { $1 * (1 + 20 * Float($0 % 3)) } }
            let (smoothed, choices) = AttentionSmoothing.smoothing(weights, ranges: uneven)
            XCTAssertEqual(choices.count, weights.stages.reduce(0) { $0 + $1.blocks.count })
            XCTAssertTrue(choices.contains { $0.alpha > 0 }, "\(choices)")
            // The weights really changed…
            let changed = zip(weights.int8Layers, smoothed.int8Layers).filter { $0.weight.array != $1.weight.array }.map(\.0.name)
            XCTAssertTrue(changed.contains { $0.hasSuffix("attention.output.dense") } && changed.contains { $0.hasSuffix("attention.self.value") })
            XCTAssertTrue(changed.allSatisfy { $0.hasSuffix("attention.output.dense") || $0.hasSuffix("attention.self.value") }, "\(changed)")
            // …and the function did not.
            let after = FP32Engine(weights: smoothed, height: shape[2], width: shape[3])
            after.run(input: input.pointer)
            for (a, b) in zip(before, after.logits.map(\.values)) {
                let scale = a.map { abs($0) }.max()!
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * scale + 1e-6, name) }
            }
        }
    }

    func testWithBalancedChannelsNoSmoothingIsChosen() throws {
        // Every channel with the same range and the same weights: smoothing can only add weight noise.
        let k = 16, n = 8
        let layer = LinearWeights(name: "o", layout: .linear, inFeatures: k, outFeatures: n,
                                  weight: FloatBuffer((0 ..< n * k).map { Float(($0 * 7) % 5) - 2 + 0.5 }), bias: nil)
        let (scales, choice) = ChannelSmoothing.choose(output: layer, ranges: [Double](repeating: 3, count: k), alphas: AttentionSmoothing.alphas)
        XCTAssertTrue(scales.allSatisfy { abs($0 - 1) < 1e-12 } || choice.predictedGain < 1e-9, "\(choice)")
    }
}
