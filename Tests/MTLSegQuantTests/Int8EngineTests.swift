import CAllocationCounter
import CKernels
import Foundation
import MTLSegCore
import XCTest
@testable import MTLSegQuant

/// The int8 engine on the committed fixtures: close to fp32, identical across
/// kernel sets and thread counts, and unchanged through an int8 model file.
final class Int8EngineTests: XCTestCase {
    private func logits(_ engine: SegmentationEngine, _ input: FloatBuffer) -> [[Float]] {
        engine.run(input: input.pointer)
        return engine.logits.map(\.values)
    }

    func testInt8FollowsFP32() throws {
        for (model, reference) in [("mtl2-tiny.safetensors", "mtl2-tiny.reference.safetensors"),
                                   ("mtl3-tiny.safetensors", "mtl3-tiny.reference.safetensors"),
                                   ("segformer-tiny.safetensors", "segformer-tiny.reference.safetensors")] {
            let setup = try CalibratedFixture.make(model, reference: reference)
            let fp32 = FP32Engine(weights: setup.fp32, height: setup.height, width: setup.width)
            let int8 = try setup.model.makeEngine(height: setup.height, width: setup.width, threads: 1)
            var agreeing = 0, total = 0
            for input in setup.inputs {
                let expected = logits(fp32, input), actual = logits(int8, input)
                for t in expected.indices {
                    let scale = expected[t].map(abs).max()!
                    let worst = zip(expected[t], actual[t]).map { abs($0 - $1) }.max()!
                    // Per-tensor u8 activations on a model this narrow (decoder width 16) stray up to ~10 % of the largest logit.
                    XCTAssertLessThan(worst, 0.2 * scale, "\(model) task \(t): int8 strays \(worst) from logits of size \(scale)")
                    let a = SegmentationMask(logits: fp32.logits[t]).classes, b = SegmentationMask(logits: int8.logits[t]).classes
                    agreeing += zip(a, b).filter { $0 == $1 }.count
                    total += a.count
                }
            }
            XCTAssertGreaterThan(Double(agreeing) / Double(total), 0.95, "\(model): argmax agreement with fp32")
        }
    }

    func testEveryKernelSetAndThreadCountGivesTheSameLogits() throws {
        let setup = try CalibratedFixture.make("mtl3-tiny.safetensors", reference: "mtl3-tiny.reference.safetensors")
        var sets = [UnsafePointer<ck_qgemm_kernels>?](repeating: nil, count: 8)
        let count = ck_qgemm_available(&sets, sets.count)
        // The scalar set always; SIMD sets where the CPU has them (none on an AArch64 core without the dot product).
        XCTAssertGreaterThanOrEqual(count, 1, "the scalar set runs everywhere")
        #if arch(x86_64)
        XCTAssertGreaterThan(count, 1, "only the scalar set: no SIMD kernels compared (an x86-64 without AVX2?)")
        #endif
        let baseline = logits(try setup.model.makeEngine(height: setup.height, width: setup.width, threads: 1), setup.inputs[0])
        for set in sets.prefix(count).compactMap({ $0 }) {
            for threads in [1, 3] {
                let engine = try Int8Engine(weights: setup.model.weights, activations: setup.model.record.grids(for: setup.model.weights.description),
                                            height: setup.height, width: setup.width, threads: threads, kernels: set)
                XCTAssertEqual(logits(engine, setup.inputs[0]), baseline, "\(String(cString: set.pointee.name)), \(threads) threads")
            }
        }
    }

    /// After a first frame, a frame allocates nothing: with int8 and with fp32 attention, with layers back in fp32
    /// (the first block's, a decoder projection, a head's combine conv), with every decoder input after the first read
    /// at 16 bits, with one task and with three. OpenBLAS runs as in mtlseg and mtlsegd: its kernels differ in what they allocate.
    func testAFrameAllocatesNothing() throws {
        try skipInASanitizerBuild()
        if try ranAgainWithTheToolsBLASEnvironment() { return }
        for (model, reference) in [("mtl3-tiny.safetensors", "mtl3-tiny.reference.safetensors"),
                                   ("segformer-tiny.safetensors", "segformer-tiny.reference.safetensors")] {
            let setup = try CalibratedFixture.make(model, reference: reference)
            let weights = setup.model.weights
            var fallbacks: Set<String> = [weights.stages[0].blocks[0].query.name, weights.decoder.stageProjections[0].name]
            if let head = weights.heads.first { fallbacks.insert(head.combine.name) }
            let withFallbacks = setup.model.fallingBack(fallbacks, fp32: setup.fp32)
            let engines: [(String, Int8Engine)] = [
                ("int8", try setup.model.makeEngine(height: setup.height, width: setup.width, threads: 1)),
                ("fp32 attention", try Int8Engine(weights: weights, activations: setup.model.record.grids(for: weights.description),
                                                  height: setup.height, width: setup.width, attentionInInt8: false)),
                ("fp32 fallbacks", try withFallbacks.makeEngine(height: setup.height, width: setup.width, threads: 1)),
                ("wide decoder inputs", try Int8Engine(weights: setup.model.fallingBack(Set(weights.decoder.stageProjections.dropFirst().map(\.name)),
                                                                                         fp32: setup.fp32).weights,
                                                       activations: setup.model.record.grids(for: weights.description),
                                                       height: setup.height, width: setup.width,
                                                       wideDecoderInputs: Set(1 ..< weights.stages.count))),
            ]
            for (name, engine) in engines {
                engine.run(input: setup.inputs[0].pointer)
                // One thread: the whole frame runs on this one, whose allocations the counter counts.
                allocation_counter_start()
                engine.run(input: setup.inputs[1].pointer)
                let allocations = allocation_counter_stop()
                XCTAssertEqual(allocations, 0, "\(model), \(name): a frame made \(allocations) heap allocations")
            }
        }
        // The counter does see allocations on this thread, so the check above can fail.
        allocation_counter_start()
        let buffer = FloatBuffer(count: 1000)
        let allocations = allocation_counter_stop()
        XCTAssertEqual(buffer.count, 1000)
        XCTAssertGreaterThan(allocations, 0, "the counter missed an allocation")
    }

    /// The daemon's frame for a client that asked for another mask size: a pass that writes the logits, then every
    /// task's mask at that size (MaskUpsampler, allocated once) allocates nothing either.
    func testMasksAtAnotherSizeAllocateNothing() throws {
        try skipInASanitizerBuild()
        if try ranAgainWithTheToolsBLASEnvironment() { return }
        let setup = try CalibratedFixture.make("mtl3-tiny.safetensors", reference: "mtl3-tiny.reference.safetensors")
        let engine = try setup.model.makeEngine(height: setup.height, width: setup.width, threads: 1)
        engine.writesLogits = true
        let output = engine.plan.outputSize
        let upsampler = MaskUpsampler(logitsWidth: output.width, logitsHeight: output.height,
                                      maxClasses: engine.logits.map { $0.shape[0] }.max()!, width: 640, height: 480)
        let masks = engine.logits.map { _ in UnsafeMutablePointer<UInt8>.allocate(capacity: 640 * 480) }
        defer { masks.forEach { $0.deallocate() } }
        // Frames in the steady state: the first calls (of the kernels, of generic code) make what they make once.
        var counts: [(run: Int, masks: Int)] = []
        counts.reserveCapacity(3)
        for frame in 0 ..< 3 {
            allocation_counter_start()
            engine.run(input: setup.inputs[frame % 2].pointer)
            let inRun = allocation_counter_stop()
            allocation_counter_start()
            for t in 0 ..< engine.logits.count { upsampler.mask(logits: engine.logits[t].pointer, classes: engine.logits[t].shape[0], into: masks[t]) }
            counts.append((inRun, allocation_counter_stop()))
        }
        XCTAssertEqual(counts.last?.run, 0, "a pass that writes the logits made heap allocations: \(counts)")
        XCTAssertEqual(counts.last?.masks, 0, "the masks at 640x480 made heap allocations: \(counts)")
        let expected = SegmentationMask(logits: engine.logits[1], width: 640, height: 480).classes
        XCTAssertEqual(Array(UnsafeBufferPointer(start: masks[1], count: 640 * 480)), expected)
    }

    func testInt8FileRoundTrip() throws {
        let setup = try CalibratedFixture.make("mtl2-tiny.safetensors", reference: "mtl2-tiny.reference.safetensors")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-int8-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Int8ModelWriter.write(setup.model, to: path)
        let source = try ModelSource(path: path)
        XCTAssertEqual(source.quantization, setup.model.record)
        XCTAssertEqual(source.file.entry("segformer.encoder.block.1.0.mlp.dense1.weight")?.dtype, .I8)
        XCTAssertEqual(source.file.entry("segformer.encoder.patch_embeddings.0.proj.weight")?.dtype, .F32, "the first conv stays fp32")
        let loaded = try EngineFactory.make(source: source, weights: try MTLSegFormerWeights(source: source),
                                            height: setup.height, width: setup.width, threads: 1)
        XCTAssertTrue(loaded.precisionName.hasPrefix("int8"))
        let direct = try setup.model.makeEngine(height: setup.height, width: setup.width, threads: 1)
        for input in setup.inputs.prefix(2) {
            XCTAssertEqual(logits(loaded, input), logits(direct, input))
        }
    }

    func testInt8FileMissingAWeightScaleNamesIt() throws {
        let setup = try CalibratedFixture.make("mtl2-tiny.safetensors", reference: "mtl2-tiny.reference.safetensors")
        let file = try SafeTensorsFile(bytes: try Int8ModelWriter.serialize(setup.model))
        var writer = SafeTensorsWriter()
        writer.metadata = file.metadata
        let dropped = "mtl_head.combine.1.conv.weight_scale"
        for entry in file.entries where entry.name != dropped {
            writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: file.rawBytes(entry))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-int8-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        XCTAssertThrowsError(try MTLSegFormerWeights(source: try ModelSource(path: path))) { error in
            XCTAssertEqual(error as? ModelError, .missingTensor(path: path, tensor: dropped))
        }
    }

    func testGridsContainZeroAndCoverTheRange() {
        let grid = QuantParams(min: -1.5, max: 3)
        XCTAssertEqual(Float(grid.zeroPoint) * grid.scale, 1.5, accuracy: grid.scale / 2)
        XCTAssertEqual(Float(255 - grid.zeroPoint) * grid.scale, 3, accuracy: grid.scale)
        let relu = QuantParams(min: 0.2, max: 4)  // widened down to 0
        XCTAssertEqual(relu.zeroPoint, 0)
        XCTAssertEqual(relu.scale, 4 / 255, accuracy: 1e-7)
    }

    /// A sanitizer build (`.ci/sanitize`) keeps the sanitizer's own malloc: there the counter counts nothing.
    private func skipInASanitizerBuild() throws {
        try XCTSkipIf(allocation_counter_enabled() == 0, "allocations are not counted in a sanitizer build")
    }
}
