import Foundation
import MTLSegEssentials
import MTLSegTestSupport
import XCTest
@testable import MTLSegCore

/// Model files crafted to trap, exhaust memory or load as a silently useless model (issue #17, classes 1, 2
/// and 7): each is refused with an error naming the file and what is wrong, before anything large is allocated.
final class HostileModelTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The 2-task fixture with its description changed by `describe` and its tensors by `edit` (values as floats,
    /// or an entry replaced by several: name, dtype, shape, bytes).
    private func model(named name: String = "model.safetensors", describe: (inout [String: Any]) -> Void = { _ in },
                       edit: (SafeTensorsEntry, [Float]) -> [(String, SafeTensorsDType, [Int], Data)]? = { _, _ in nil }) throws -> String {
        let original = try SafeTensorsFile(path: Fixtures.path("mtl2-tiny.safetensors"))
        var description = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(original.metadata["mtlseg"]!.utf8)) as? [String: Any])
        describe(&description)
        var writer = SafeTensorsWriter()
        writer.metadata = ["mtlseg": String(decoding: try JSONSerialization.data(withJSONObject: description), as: UTF8.self)]
        for entry in original.entries {
            if let replacement = edit(entry, try original.floats(entry).array) {
                for (name, dtype, shape, bytes) in replacement { writer.add(name, dtype: dtype, shape: shape, bytes: bytes) }
            } else {
                writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: original.rawBytes(entry))
            }
        }
        let path = directory.appendingPathComponent(name).path
        try writer.write(to: path)
        return path
    }

    private static func floatBytes(_ values: [Float]) -> Data {
        values.withUnsafeBufferPointer { Data(buffer: $0) }
    }

    /// The fixture with one value of `tensor` replaced.
    private func model(setting tensor: String, index: Int = 0, to value: Float) throws -> String {
        try model(edit: { entry, values in
            guard entry.name == tensor else { return nil }
            var changed = values
            changed[index] = value
            return [(entry.name, .F32, entry.shape, Self.floatBytes(changed))]
        })
    }

    /// The fixture with the first query projection stored as int8, with `scale` as its per-channel scales.
    private func int8Model(scale: [Float]) throws -> String {
        let layer = "segformer.encoder.block.0.0.attention.self.query"
        return try model(edit: { entry, values in
            guard entry.name == layer + ".weight" else { return nil }
            let int8 = values.map { Int8(clamping: Int(($0 * 100).rounded())) }
            return [(entry.name, .I8, entry.shape, int8.withUnsafeBufferPointer { Data(buffer: $0) }),
                    (layer + ".weight_scale", .F32, [entry.shape[0]], Self.floatBytes(scale))]
        })
    }

    private func loadError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try MTLSegFormerWeights(source: try ModelSource(path: path))
            XCTFail("loading \(path) succeeded", file: file, line: line)
            return ""
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), "the message names the file: \(message)", file: file, line: line)
            return message
        }
    }

    // MARK: Class 1: sizes that trap or exhaust memory

    /// An HF checkpoint directory whose config.json has `key` set to `value` (JSON text).
    private func checkpoint(_ key: String, _ value: String) throws -> String {
        let fixture = Fixtures.path("segformer-tiny-hf")
        let target = directory.appendingPathComponent("hf-\(key)-\(UUID().uuidString.prefix(4))")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: (fixture as NSString).appendingPathComponent("model.safetensors"),
                                         toPath: target.appendingPathComponent("model.safetensors").path)
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture + "/config.json"))) as? [String: Any])
        config.removeValue(forKey: "id2label")
        config.removeValue(forKey: "label2id")
        var text = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
        text = String(text.dropLast()) + ",\"\(key)\":\(value)}"
        try Data(text.utf8).write(to: target.appendingPathComponent("config.json"))
        return target.path
    }

    func testHFConfigNumbersThatUsedToTrapOrExhaustMemory() throws {
        for value in ["-1", "0", "1e30", "1e12", "256", "-1e30", "1.5"] {
            let path = try checkpoint("num_labels", value)
            let message = loadError(path)
            XCTAssertTrue(message.contains("num_labels"), "num_labels \(value): \(message)")
        }
        for key in ["num_channels", "decoder_hidden_size"] {
            XCTAssertTrue(loadError(try checkpoint(key, "1e30")).contains(key))
        }
        let hidden = try checkpoint("hidden_sizes", "[8, 16, 24, 1e300]")
        XCTAssertTrue(loadError(hidden).contains("hidden_sizes"))
        // The same checkpoint with a sane label count still loads.
        XCTAssertNoThrow(try MTLSegFormerWeights(source: try ModelSource(path: try checkpoint("num_labels", "3"))))
    }

    func testADeclaredInputOverTheBudgetIsRefusedBeforeAllocation() throws {
        let budget = MemoryBudget(megabytes: 512, raisedBy: "--memory-budget MB")
        for side in [4096, 16384] {
            let path = try model(named: "input-\(side).safetensors") { $0["input"] = ["width": side, "height": side] }
            for precision in [Precision.auto, .fp32] {
                XCTAssertThrowsError(try EngineFactory.open(path: path, threads: 1, precision: precision, budget: budget)) { error in
                    let message = "\(error)"
                    XCTAssertTrue(error is MemoryBudgetExceeded, message)
                    XCTAssertTrue(message.contains(path) && message.contains("\(side)x\(side)"), message)
                    XCTAssertTrue(message.contains("--memory-budget MB") && message.contains("512 MiB"), message)
                }
            }
        }
        // The fixture at its own size fits, and an explicit size over the budget is refused the same way.
        let fixture = Fixtures.path("mtl2-tiny.safetensors")
        XCTAssertNoThrow(try EngineFactory.open(path: fixture, threads: 1, budget: budget))
        XCTAssertThrowsError(try EngineFactory.open(path: fixture, size: InputSize(width: 16384, height: 16384), threads: 1, budget: budget))
        let source = try ModelSource(path: fixture)
        XCTAssertThrowsError(try EngineFactory.make(source: source, height: 8192, width: 8192, threads: 1, budget: budget))
    }

    /// A budget raised past the machine's memory does not let an engine try to allocate more than the machine has (the
    /// runtime's failed allocation is a crash): the plan is refused, saying raising the budget cannot help.
    func testAPlanOverTheMachinesMemoryIsRefusedWhateverTheBudget() throws {
        let source = try ModelSource(path: Fixtures.path("mtl2-tiny.safetensors"))
        let plan = MemoryPlan(description: source.description, height: 512, width: 512, entries: source.file.entries, engine: .int8, threads: 1)
        let input = MapSize(height: 512, width: 512)
        let raised = MemoryBudget(megabytes: 1 << 30, raisedBy: "--memory-budget MB")
        XCTAssertNoThrow(try plan.check(raised, model: "tiny", input: input, machineBytes: plan.totalBytes))
        XCTAssertThrowsError(try plan.check(raised, model: "tiny", input: input, machineBytes: plan.totalBytes - 1)) { error in
            let message = "\(error)"
            XCTAssertEqual((error as? MemoryBudgetExceeded)?.machineBytes, plan.totalBytes - 1, message)
            XCTAssertTrue(message.contains("tiny: at 512x512") && message.contains("more than this machine's memory"), message)
            XCTAssertFalse(message.contains("raise it"), message)
        }
    }

    /// Descriptions at the edge of validation imply sizes past Int.max: the plan saturates instead of trapping.
    func testThePlanSaturatesInsteadOfOverflowing() throws {
        let huge = EncoderConfig(numChannels: 64, hiddenSizes: [65536, 65536], depths: [4096, 4096], numAttentionHeads: [1, 1],
                                 srRatios: [1, 1], patchSizes: [4096, 4096], strides: [1, 1], mlpRatios: [4096, 4096])
        let description = ModelDescription(name: "huge", encoder: huge, decoderHiddenSize: 65536,
                                           tasks: [TaskDescription(name: "t", classes: Array(repeating: "c", count: 255))],
                                           mean: Array(repeating: 0, count: 64), std: Array(repeating: 1, count: 64))
        XCTAssertNoThrow(try description.validate(path: "huge"))
        let entry = SafeTensorsEntry(name: "w", dtype: .F32, shape: [Int.max / 2, 4], byteRange: 0 ..< 0)
        let plan = MemoryPlan(description: description, height: 16384, width: 16384, entries: [entry], engine: .int8, threads: 256)
        XCTAssertEqual(plan.totalBytes, .max)
        XCTAssertThrowsError(try plan.check(MemoryBudget(megabytes: .max, raisedBy: "x"), model: "huge", input: MapSize(height: 16384, width: 16384))) {
            XCTAssertTrue("\($0)".contains("more than 8 EiB"), "\($0)")
        }
        // A plan that fits is not over-counted absurdly: the fixture at its size needs well under 64 MiB.
        let source = try ModelSource(path: Fixtures.path("mtl2-tiny.safetensors"))
        let small = MemoryPlan(description: source.description, height: 75, width: 102, entries: source.file.entries, engine: .fp32, threads: 1)
        XCTAssertGreaterThan(small.totalBytes, small.weightBytes)
        XCTAssertLessThan(small.totalBytes, 64 << 20)
    }

    // MARK: Class 2: values that make a model silently useless

    func testNonFiniteWeightsAndBiasesAreRefusedByName() throws {
        let cases: [(String, Float)] = [
            ("segformer.encoder.block.0.0.attention.self.query.weight", .nan),
            ("segformer.encoder.block.1.1.mlp.dense2.weight", .infinity),
            ("segformer.encoder.patch_embeddings.0.proj.bias", .nan),
            ("decode_head.batch_norm.running_mean", -.infinity),
            ("mtl_head.classifier.1.bias", .nan),
        ]
        for (tensor, value) in cases {
            let message = loadError(try model(setting: tensor, index: 1, to: value))
            XCTAssertTrue(message.contains("'\(tensor)'") && message.contains("value 1") && message.contains("finite"), message)
        }
    }

    func testANegativeBatchNormVarianceIsRefused() throws {
        for tensor in ["decode_head.batch_norm.running_var", "mtl_head.task.1.bn.running_var"] {
            let message = loadError(try model(setting: tensor, index: 2, to: -0.5))
            XCTAssertTrue(message.contains("'\(tensor)'") && message.contains("variance"), message)
        }
        // Zero is a legal variance (eps keeps the square root defined).
        XCTAssertNoThrow(try MTLSegFormerWeights(source: try ModelSource(path: try model(setting: "decode_head.batch_norm.running_var", to: 0))))
    }

    func testBadInt8WeightScalesAreRefusedAndLargeOnesWarned() throws {
        let good = [Float](repeating: 0.01, count: 8)
        XCTAssertNoThrow(try MTLSegFormerWeights(source: try ModelSource(path: try int8Model(scale: good))))
        for bad: Float in [0, .nan, -0.01, .leastNonzeroMagnitude, 1e30, .infinity] {
            var scale = good
            scale[3] = bad
            let message = loadError(try int8Model(scale: scale))
            XCTAssertTrue(message.contains("query.weight_scale") && message.contains("value 3"), "scale \(bad): \(message)")
        }
        var large = good
        large[5] = 2
        let source = try ModelSource(path: try int8Model(scale: large))
        XCTAssertEqual(source.warnings.count, 1)
        XCTAssertTrue(source.warnings.first?.contains("query.weight_scale") ?? false, "\(source.warnings)")
    }

    func testActivationScalesThatAreNotNormalNumbersAreRefused() throws {
        for scale in ["0", "1e-40", "-1"] {
            let path = directory.appendingPathComponent("act-\(scale).safetensors").path
            let original = try SafeTensorsFile(path: Fixtures.path("mtl2-tiny.safetensors"))
            var writer = SafeTensorsWriter()
            writer.metadata = ["mtlseg": original.metadata["mtlseg"]!,
                               QuantizationRecord.metadataKey: """
                               {"format_version":1,"activations":{"stage0.output":{"scale":\(scale),"zero_point":0}},\
                               "calibration":{"method":"m","images":1,"width":1,"height":1,"source_model":"s","created_at":"t"}}
                               """]
            for entry in original.entries { writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: original.rawBytes(entry)) }
            try writer.write(to: path)
            let message = loadError(path)
            XCTAssertTrue(message.contains("activations.stage0.output"), message)
        }
    }

    /// A fractional zero point among the (fractional) scales is named with its field, not called "not valid JSON"
    /// (UnfitNumber: the scales' field takes fractions and gets its numbers back).
    func testAFractionalZeroPointIsNamed() throws {
        let path = directory.appendingPathComponent("zero-point.safetensors").path
        let original = try SafeTensorsFile(path: Fixtures.path("mtl2-tiny.safetensors"))
        var writer = SafeTensorsWriter()
        writer.metadata = ["mtlseg": original.metadata["mtlseg"]!,
                           QuantizationRecord.metadataKey: """
                           {"format_version":1,"activations":{"stage0.output":{"scale":0.25,"zero_point":3},\
                           "stage1.output":{"scale":0.5,"zero_point":3.5}},\
                           "calibration":{"method":"m","images":1,"width":1,"height":1,"source_model":"s","created_at":"t"}}
                           """]
        for entry in original.entries { writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: original.rawBytes(entry)) }
        try writer.write(to: path)
        let message = loadError(path)
        XCTAssertTrue(message.contains("'\(QuantizationRecord.metadataKey).activations.stage1.output.zero_point': expected a whole number, found 3.5"),
                      message)
    }

    /// A record that lacks a grid the int8 engine needs, or lists a stage the model does not have, is refused when the
    /// file is opened (so `mtlseg inspect` refuses it too), naming the file, not only the model's name.
    func testAnIncompleteQuantizationRecordIsRefusedOnOpening() throws {
        let original = try SafeTensorsFile(path: Fixtures.path("mtl2-tiny.safetensors"))
        let description = try ModelDescription.decode(json: original.metadata["mtlseg"]!, path: "fixture")
        let grids = Dictionary(uniqueKeysWithValues: QuantPoint.all(for: description).map { ($0.name, #"{"scale":0.05,"zero_point":3}"#) })
        func record(dropping dropped: String?, wide: [Int]) -> String {
            let activations = grids.filter { $0.key != dropped }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            return #"{"format_version":1,"activations":{"# + activations + #"},"wide_decoder_inputs":"# + "\(wide)" + #","#
                + #""calibration":{"method":"m","images":1,"width":1,"height":1,"source_model":"s","created_at":"t"}}"#
        }
        func write(_ name: String, _ record: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            var writer = SafeTensorsWriter()
            writer.metadata = ["mtlseg": original.metadata["mtlseg"]!, QuantizationRecord.metadataKey: record]
            for entry in original.entries { writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: original.rawBytes(entry)) }
            try writer.write(to: path)
            return path
        }
        XCTAssertNoThrow(try ModelSource(path: try write("complete.safetensors", record(dropping: nil, wide: [1]))))
        let dropped = QuantPoint.all(for: description)[1].name
        let missing = loadError(try write("missing.safetensors", record(dropping: dropped, wide: [])))
        XCTAssertTrue(missing.contains("activations.\(dropped)': missing"), missing)
        let stages = description.encoder.stageCount
        for stage in [0, stages] {
            let wrong = loadError(try write("wide-\(stage).safetensors", record(dropping: nil, wide: [stage])))
            XCTAssertTrue(wrong.contains("wide_decoder_inputs") && wrong.contains("stage \(stage) is not one of"), wrong)
        }
    }

    // MARK: Class 7: task names that become file names

    func testUnsafeTaskNamesAreRefusedAtLoad() throws {
        for name in ["../etc", "a/b", "..", "x\n<0>forged", "tab\there", "back\\slash", "", String(repeating: "n", count: 65), "del\u{7F}",
                     // A combining mark makes "/" or "." part of one Character; the file system still sees the slash or the dots.
                     "a/\u{301}b", "..\u{301}"] {
            let path = try model { description in
                var tasks = description["tasks"] as! [[String: Any]]
                tasks[0]["name"] = name
                description["tasks"] = tasks
            }
            let message = loadError(path)
            XCTAssertTrue(message.contains("tasks[0].name"), "\(name.debugDescription): \(message)")
        }
        XCTAssertNil(TaskNameRules.problem("plants-2_rows.v1"))
        XCTAssertNil(TaskNameRules.problem("cultures à rangs"), "non-ASCII letters are fine")
    }

    func testNamesFromElsewhereAreMadeSafeForFileNames() {
        XCTAssertEqual(TaskNameRules.safeFileComponent("../../etc/passwd"), "______etc_passwd")
        XCTAssertEqual(TaskNameRules.safeFileComponent("a\nb"), "a_b")
        XCTAssertEqual(TaskNameRules.safeFileComponent("a/\u{301}b"), "a_\u{301}b")
        XCTAssertFalse(TaskNameRules.safeFileComponent("..\u{301}/x").unicodeScalars.contains("/"))
        XCTAssertEqual(TaskNameRules.safeFileComponent(""), "_")
        XCTAssertEqual(TaskNameRules.safeFileComponent("rows"), "rows")
        // Whatever the input, the result is one file name component without control characters.
        let seed = testSeed("testNamesFromElsewhereAreMadeSafeForFileNames", fallback: 0x5EED_0002)
        var generator = SplitMix64(seed: seed)
        for _ in 0 ..< 500 {
            let scalars = (0 ..< 12).map { _ -> Character in
                let pool: [Character] = ["/", ".", "\\", "\n", "\r", "\u{0}", "\u{1B}", "\u{2028}", "a", "é", "-", "_"]
                return pool[Int(generator.next() >> 33) % pool.count]
            }
            let safe = TaskNameRules.safeFileComponent(String(scalars))
            XCTAssertNil(TaskNameRules.problem(safe), "seed \(seed): \(String(scalars).debugDescription) → \(safe.debugDescription)")
        }
    }
}

/// A model path that is not a regular file is refused without being opened (a FIFO would block the reader).
final class NonRegularModelFileTests: XCTestCase {
    func testAFIFOAsModelOrConfigIsRefusedWithoutWaiting() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("model.safetensors").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertEqual(mkfifo(directory.appendingPathComponent("config.json").path, 0o644), 0)
        let done = DispatchSemaphore(value: 0)
        let errors = ErrorBox()
        Thread {
            do { _ = try ModelSource(path: fifo) } catch { errors.add(error) }
            do { _ = try ModelSource(path: directory.path) } catch { errors.add(error) }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "opening a FIFO as a model did not return within 10 s")
        XCTAssertEqual(errors.all.count, 2)
        XCTAssertTrue(errors.all.allSatisfy { "\($0)".contains("not a regular file") }, "\(errors.all)")
    }
}

private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return errors }
    func add(_ error: Error) { lock.lock(); errors.append(error); lock.unlock() }
}
