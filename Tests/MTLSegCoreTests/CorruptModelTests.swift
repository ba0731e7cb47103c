import Foundation
import XCTest
@testable import MTLSegCore

/// Each way a model file can be broken gives one ModelError that names the tensor or field, never a crash.
final class CorruptModelTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-corrupt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The 2-task fixture rewritten through `edit`, which may change tensors (nil drops one) and the description JSON.
    private func rewrittenModel(tensor edit: (SafeTensorsEntry, Data) -> (SafeTensorsDType, [Int], Data)? = { ($0.dtype, $0.shape, $1) },
                                metadata: (String) -> String = { $0 }) throws -> String {
        let original = try SafeTensorsFile(path: Fixtures.path("mtl2-tiny.safetensors"))
        var writer = SafeTensorsWriter()
        // Compact JSON, so that edits can match `"key":value` text exactly.
        let description = try JSONSerialization.jsonObject(with: Data(original.metadata["mtlseg"]!.utf8))
        let compact = String(decoding: try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys]), as: UTF8.self)
        writer.metadata = ["mtlseg": metadata(compact)]
        for entry in original.entries {
            if let (dtype, shape, bytes) = edit(entry, original.rawBytes(entry)) {
                writer.add(entry.name, dtype: dtype, shape: shape, bytes: bytes)
            }
        }
        let path = directory.appendingPathComponent("model.safetensors").path
        try writer.write(to: path)
        return path
    }

    private func loadError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> ModelError? {
        do {
            _ = try MTLSegFormerWeights(source: try ModelSource(path: path))
            XCTFail("loading \(path) succeeded", file: file, line: line)
            return nil
        } catch let error as ModelError {
            XCTAssertTrue(error.description.contains(path) || error.description.contains("config.json"),
                          "the message names the file: \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("not a ModelError: \(error)", file: file, line: line)
            return nil
        }
    }

    func testIntactRewriteLoads() throws {
        XCTAssertNoThrow(try MTLSegFormerWeights(source: try ModelSource(path: try rewrittenModel())))
    }

    func testTruncatedFile() throws {
        let path = try rewrittenModel()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        guard case let .badTensorEntry(_, tensor, reason) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertFalse(tensor.isEmpty)
        XCTAssertTrue(reason.contains("pass the end"), reason)
    }

    func testHeaderLengthPastTheEnd() throws {
        let path = try rewrittenModel()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.replaceSubrange(0 ..< 8, with: withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Data($0) })
        try bytes.write(to: URL(fileURLWithPath: path))
        guard case let .truncated(_, reason) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertTrue(reason.contains("header length"), reason)
    }

    func testBadHeaderJSON() throws {
        let path = try rewrittenModel()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[8] = UInt8(ascii: "[")  // the header's opening brace
        try bytes.write(to: URL(fileURLWithPath: path))
        guard case .badHeader = loadError(path) else { return XCTFail("wrong error") }
    }

    func testBadDescriptionJSON() throws {
        let path = try rewrittenModel(metadata: { _ in "{\"tasks\": [" })
        XCTAssertEqual(loadError(path), .badMetadata(path: path, field: "mtlseg", reason: "not valid JSON"))
    }

    func testDescriptionFieldOfTheWrongType() throws {
        let path = try rewrittenModel(metadata: { $0.replacingOccurrences(of: "\"decoder_hidden_size\":16", with: "\"decoder_hidden_size\":\"16\"") })
        guard case let .badMetadata(_, field, _) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertEqual(field, "decoder_hidden_size")
    }

    /// Foundation's decoder calls a fraction or a huge number in an integer field "not valid JSON", naming no field.
    func testDescriptionNumberThatIsNotWholeNamesItsField() throws {
        let cases: [(written: String, as: String, field: String)] = [
            ("\"decoder_hidden_size\":16", "\"decoder_hidden_size\":16.5", "decoder_hidden_size"),
            ("\"num_attention_heads\":[1,2,3,4]", "\"num_attention_heads\":[1,2,3e30,4]", "encoder.num_attention_heads[2]"),
        ]
        for edit in cases {
            let path = try rewrittenModel(metadata: { $0.replacingOccurrences(of: edit.written, with: edit.as) })
            guard case let .badMetadata(_, field, reason) = loadError(path) else { return XCTFail("wrong error for \(edit.as)") }
            XCTAssertEqual(field, edit.field)
            XCTAssertTrue(reason.hasPrefix("expected a whole number, found "), reason)
        }
    }

    func testDescriptionMissingAField() throws {
        let path = try rewrittenModel(metadata: { $0.replacingOccurrences(of: "\"encoder\":", with: "\"encoderr\":") })
        XCTAssertEqual(loadError(path), .badMetadata(path: path, field: "encoder", reason: "missing"))
    }

    func testInconsistentDescription() throws {
        let path = try rewrittenModel(metadata: { $0.replacingOccurrences(of: "\"num_attention_heads\":[1,2,3,4]", with: "\"num_attention_heads\":[1,2,5,4]") })
        guard case let .badMetadata(_, field, reason) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertEqual(field, "encoder.num_attention_heads")
        XCTAssertTrue(reason.contains("stage 2"), reason)
    }

    /// Rewrites the header text of the file at `path` through `edit`, keeping the data section.
    private func editHeader(_ path: String, _ edit: (String) -> String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = Data(edit(String(decoding: bytes[8 ..< 8 + headerLength], as: UTF8.self)).utf8)
        var out = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(header)
        out.append(bytes[(8 + headerLength)...])
        try out.write(to: URL(fileURLWithPath: path))
    }

    private func offsets(_ range: Range<Int>) -> String { "\"data_offsets\":[\(range.lowerBound),\(range.upperBound)]" }

    func testOverlappingOffsets() throws {
        let path = try rewrittenModel()
        let file = try SafeTensorsFile(path: path)
        let second = file.entries[1]
        try editHeader(path) { $0.replacingOccurrences(of: offsets(second.byteRange), with: offsets(second.byteRange.lowerBound - 4 ..< second.byteRange.upperBound - 4)) }
        XCTAssertEqual(loadError(path), .overlappingTensors(path: path, first: file.entries[0].name, second: second.name))
    }

    func testOutOfRangeOffsets() throws {
        let path = try rewrittenModel()
        let file = try SafeTensorsFile(path: path)
        let last = file.entries.last!
        try editHeader(path) { $0.replacingOccurrences(of: offsets(last.byteRange), with: offsets(last.byteRange.lowerBound + 8 ..< last.byteRange.upperBound + 8)) }
        guard case let .badTensorEntry(_, tensor, reason) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertEqual(tensor, last.name)
        XCTAssertTrue(reason.contains("pass the end"), reason)
    }

    func testWeightStoredAsIntegers() throws {
        let name = "segformer.encoder.block.1.0.attention.self.query.weight"
        let path = try rewrittenModel(tensor: { entry, bytes in
            guard entry.name == name else { return (entry.dtype, entry.shape, bytes) }
            return (.I32, entry.shape, bytes)
        })
        XCTAssertEqual(loadError(path), .wrongDType(path: path, tensor: name, expected: "F32, F16, BF16 or F64", found: "I32"))
    }

    func testShapeThatContradictsTheDescription() throws {
        let name = "mtl_head.classifier.1.weight"
        let path = try rewrittenModel(tensor: { entry, bytes in
            guard entry.name == name else { return (entry.dtype, entry.shape, bytes) }
            // The same bytes declared as [2, 24] instead of [3, 16, 1, 1].
            return (entry.dtype, [2, 24], bytes)
        })
        XCTAssertEqual(loadError(path), .wrongShape(path: path, tensor: name, expected: [3, 16, 1, 1], found: [2, 24]))
    }

    func testMoreClassesInTheDescriptionThanTheClassifierHas() throws {
        let path = try rewrittenModel(metadata: {
            $0.replacingOccurrences(of: "\"classes\":[\"background\",\"plant\"],\"colors\":[[0,0,0],[0,200,0]]",
                                    with: "\"classes\":[\"background\",\"plant\",\"weed\"],\"colors\":[[0,0,0],[0,200,0],[9,9,9]]")
        })
        guard case let .wrongShape(_, tensor, expected, found) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertEqual(tensor, "mtl_head.classifier.0.weight")
        XCTAssertEqual(expected, [3, 16, 1, 1])
        XCTAssertEqual(found, [2, 16, 1, 1])
    }

    func testMissingTensor() throws {
        let name = "mtl_head.gate.1.0.bias"
        let path = try rewrittenModel(tensor: { entry, bytes in entry.name == name ? nil : (entry.dtype, entry.shape, bytes) })
        XCTAssertEqual(loadError(path), .missingTensor(path: path, tensor: name))
    }

    func testNotAnMTLSegFile() throws {
        var writer = SafeTensorsWriter()
        writer.add("w", shape: [1], floats: [1])
        let path = directory.appendingPathComponent("plain.safetensors").path
        try writer.write(to: path)
        guard case let .badMetadata(_, field, _) = loadError(path) else { return XCTFail("wrong error") }
        XCTAssertEqual(field, "mtlseg")
    }

    func testHFConfigMissingAField() throws {
        let checkpoint = directory.appendingPathComponent("checkpoint")
        try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
        let fixture = URL(fileURLWithPath: Fixtures.path("segformer-tiny-hf"))
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("model.safetensors"),
                                         to: checkpoint.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("config.json"))) as! [String: Any]
        config.removeValue(forKey: "hidden_sizes")
        try JSONSerialization.data(withJSONObject: config).write(to: checkpoint.appendingPathComponent("config.json"))
        guard case let .badMetadata(path, field, reason) = loadError(checkpoint.path) else { return XCTFail("wrong error") }
        XCTAssertTrue(path.hasSuffix("config.json"))
        XCTAssertEqual(field, "hidden_sizes")
        XCTAssertEqual(reason, "missing")
    }

    /// The checkpoint's own preprocessor_config.json sets the normalisation (as export.py and HF's processor take it);
    /// without one, ImageNet's; a bad one is refused by file and field.
    func testHFPreprocessorConfigSetsTheNormalisation() throws {
        let checkpoint = directory.appendingPathComponent("checkpoint")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Fixtures.path("segformer-tiny-hf")), to: checkpoint)
        XCTAssertEqual(try ModelSource(path: checkpoint.path).description.mean, ModelDescription.imagenetMean)
        let preprocessor = checkpoint.appendingPathComponent("preprocessor_config.json")
        try Data(#"{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1], "do_resize": true}"#.utf8).write(to: preprocessor)
        let description = try ModelSource(path: checkpoint.path).description
        XCTAssertEqual(description.mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(description.std, [0.25, 0.5, 1])
        for (text, field) in [(#"{"image_mean": "0.5"}"#, "image_mean"), (#"{"image_std": [0.5, 0.5]}"#, "std"), (#"{"image_std": [1, 0, 1]}"#, "std")] {
            try Data(text.utf8).write(to: preprocessor)
            guard case let .badMetadata(path, badField, _) = loadError(checkpoint.path) else { return XCTFail("\(text): wrong error") }
            XCTAssertTrue(path.hasSuffix("preprocessor_config.json") || path == checkpoint.path, "\(text): \(path)")
            XCTAssertEqual(badField, field, text)
        }
    }

    func testMissingModelFile() {
        let path = directory.appendingPathComponent("absent.safetensors").path
        XCTAssertEqual(loadError(path), .unreadable(path: path, reason: "no such file or directory"))
    }
}
