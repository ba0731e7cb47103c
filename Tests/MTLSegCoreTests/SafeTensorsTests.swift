import Foundation
import XCTest
@testable import MTLSegCore

final class SafeTensorsTests: XCTestCase {
    /// A file with one tensor of each kind HF checkpoints hold, F32 weights and the I64 BatchNorm counter among them.
    private func sampleFile() -> Data {
        var writer = SafeTensorsWriter()
        writer.metadata = ["mtlseg": "{}", "note": "quote \" and newline \n"]
        writer.add("weight", shape: [2, 3], floats: [1, -2, 3.5, 0, 1e-8, -7])
        writer.add("bn.num_batches_tracked", dtype: .I64, shape: [], bytes: withUnsafeBytes(of: Int64(12345).littleEndian) { Data($0) })
        writer.add("half", dtype: .F16, shape: [3], bytes: Data([0x00, 0x3C, 0x00, 0xC0, 0x00, 0x35]))  // 1, -2, 0.3125
        writer.add("brain", dtype: .BF16, shape: [2], bytes: Data([0x80, 0x3F, 0x40, 0xC0]))            // 1, -3
        writer.add("double", dtype: .F64, shape: [1], bytes: withUnsafeBytes(of: (0.25 as Double).bitPattern.littleEndian) { Data($0) })
        writer.add("codes", shape: [4], int8s: [-128, -1, 0, 127])
        writer.add("flags", dtype: .BOOL, shape: [2], bytes: Data([1, 0]))
        writer.add("empty", dtype: .F32, shape: [0, 4], bytes: Data())
        return writer.serialized()
    }

    func testRoundTripKeepsEveryDTypeAndTheMetadata() throws {
        let file = try SafeTensorsFile(bytes: sampleFile())
        XCTAssertEqual(file.metadata["note"], "quote \" and newline \n")
        XCTAssertEqual(try file.floats(file.entry("weight")!).array, [1, -2, 3.5, 0, 1e-8, -7])
        XCTAssertEqual(try file.integers(file.entry("bn.num_batches_tracked")!), [12345])
        XCTAssertEqual(try file.floats(file.entry("half")!).array, [1, -2, 0.3125])
        XCTAssertEqual(try file.floats(file.entry("brain")!).array, [1, -3])
        XCTAssertEqual(try file.floats(file.entry("double")!).array, [0.25])
        XCTAssertEqual(try file.integers(file.entry("codes")!), [-128, -1, 0, 127])
        XCTAssertEqual(try file.integers(file.entry("flags")!), [1, 0])
        XCTAssertEqual(file.entry("empty")!.shape, [0, 4])
        XCTAssertEqual(file.entries.count, 8)
    }

    func testHalfPrecisionSpecialValues() {
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x7C00), .infinity)
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))  // smallest subnormal
        XCTAssertEqual(SafeTensorsFile.halfToFloat(0x7BFF), 65504)
        XCTAssertTrue(SafeTensorsFile.halfToFloat(0x7E00).isNaN)
    }

    func testIntegerTensorIsNotAWeight() throws {
        let file = try SafeTensorsFile(bytes: sampleFile())
        XCTAssertThrowsError(try file.floats(file.entry("codes")!)) { error in
            XCTAssertEqual(error as? ModelError, .wrongDType(path: "<memory>", tensor: "codes", expected: "F32, F16, BF16 or F64", found: "I8"))
        }
    }

    // MARK: Corrupt files: each fails with an error naming what is wrong.

    private func header(_ json: String, data: Int = 16) -> Data {
        var out = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        return out + Data(json.utf8) + Data(count: data)
    }

    private func assertFails(_ bytes: Data, _ check: (ModelError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes), file: file, line: line) { error in
            guard let error = error as? ModelError else { return XCTFail("not a ModelError: \(error)", file: file, line: line) }
            XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
        }
    }

    func testTruncatedFile() {
        let whole = sampleFile()
        assertFails(whole.prefix(5)) { if case .truncated = $0 { return true }; return false }
        // Cut inside the data section: the last tensors' offsets now pass the end.
        assertFails(whole.prefix(whole.count - 3)) { error in
            if case let .badTensorEntry(_, tensor, reason) = error { return tensor == "empty" || reason.contains("pass the end") }
            return false
        }
    }

    func testHeaderLengthPastTheEnd() {
        var bytes = header("{}")
        bytes.replaceSubrange(0 ..< 8, with: withUnsafeBytes(of: UInt64(1_000).littleEndian) { Data($0) })
        assertFails(bytes) { error in
            if case let .truncated(_, reason) = error { return reason.contains("header length 1000") }
            return false
        }
    }

    func testBadJSON() {
        assertFails(header("{\"w\": {\"dtype\": \"F32\", ")) { if case .badHeader = $0 { return true }; return false }
        assertFails(header("[1, 2]")) { if case .badHeader = $0 { return true }; return false }
    }

    func testOverlappingTensors() {
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertFails(header(json)) { $0 == .overlappingTensors(path: "<memory>", first: "a", second: "b") }
    }

    func testOffsetsOutOfRange() {
        let json = #"{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#
        assertFails(header(json, data: 16)) { error in
            if case let .badTensorEntry(_, tensor, reason) = error { return tensor == "a" && reason.contains("pass the end") }
            return false
        }
    }

    func testOffsetsThatDisagreeWithTheShape() {
        let json = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        assertFails(header(json)) { error in
            if case let .badTensorEntry(_, tensor, reason) = error { return tensor == "a" && reason.contains("needs 12") }
            return false
        }
    }

    func testUnknownDType() {
        let json = #"{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}"#
        assertFails(header(json)) { $0 == .badTensorEntry(path: "<memory>", tensor: "a", reason: "unknown dtype 'F31'") }
    }

    func testMalformedShapeAndOffsets() {
        assertFails(header(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#)) { error in
            if case let .badTensorEntry(_, tensor, reason) = error { return tensor == "a" && reason.contains("shape") }
            return false
        }
        assertFails(header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#)) { error in
            if case let .badTensorEntry(_, tensor, reason) = error { return tensor == "a" && reason.contains("ascending") }
            return false
        }
        assertFails(header(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#)) { error in
            if case let .badTensorEntry(_, tensor, _) = error { return tensor == "a" }
            return false
        }
    }

    func testMetadataMustBeStrings() {
        assertFails(header(#"{"__metadata__":{"mtlseg":{"x":1}}}"#)) { $0 == .badMetadata(path: "<memory>", field: "__metadata__.mtlseg", reason: "not a string") }
    }

    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try SafeTensorsFile(path: "/nonexistent/model.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model.safetensors"))
        }
    }
}
