import Foundation
import XCTest
@testable import MTLSegCore

final class NumpyFileTests: XCTestCase {
    func testHeaderIsAlignedAndDescribesTheArray() {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let data = values.withUnsafeBufferPointer { NumpyFile.serialize($0, shape: [2, 3]) }
        XCTAssertEqual(Array(data.prefix(8)), [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        let header = String(decoding: data[10 ..< 10 + headerLength], as: UTF8.self)
        XCTAssertTrue(header.contains("'shape': (2, 3)"))
        XCTAssertTrue(header.contains("'descr': '<f4'"))
        XCTAssertTrue(header.hasSuffix("\n"))
        XCTAssertEqual(data.count, 10 + headerLength + 24)
        let last = data.suffix(4).withUnsafeBytes { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        XCTAssertEqual(last, 6)
    }
}
