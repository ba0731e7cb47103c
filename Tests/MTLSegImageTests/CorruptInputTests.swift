import XCTest
@testable import MTLSegImage

/// Bad input must surface as an ImageIOError naming the file; libpng/libjpeg errors must never
/// crash the process (they longjmp, which the C wrappers catch).
final class CorruptInputTests: XCTestCase {
    func testMissingFile() {
        let path = "/nonexistent-\(UUID().uuidString).png"
        assertThrows(try ImageFile.read(path: path), path: path) {
            guard case .unreadable = $0 else { return false }
            return true
        }
    }

    func testDirectoryIsUnreadable() throws {
        let directory = try TemporaryDirectory()
        assertThrows(try ImageFile.read(path: directory.url.path), path: directory.url.path) {
            guard case .unreadable = $0 else { return false }
            return true
        }
    }

    func testUnrecognisedFormat() throws {
        let directory = try TemporaryDirectory()
        for (name, bytes) in [("empty.png", [UInt8]()), ("text.png", Array("hello, world".utf8)),
                              ("gif.jpg", Array("GIF89a".utf8) + [0, 0, 0, 0])] {
            let path = try directory.write(bytes, to: name)
            assertThrows(try ImageFile.read(path: path), path: path) {
                $0 == .unrecognizedFormat(path: path)
            }
        }
    }

    func testTruncatedPNGAtEveryLength() throws {
        // Every prefix that keeps the signature must fail cleanly, wherever the cut lands
        // (inside IHDR, inside IDAT, before IEND is fine only if all pixels were read).
        let png = try ImageFile.encodePNG(TestPattern.rgb(width: 6, height: 5))
        for length in 8..<png.count {
            let source = "cut-\(length).png"
            do {
                let image = try ImageFile.decode(Array(png.prefix(length)), source: source)
                // Only a cut after the last IDAT (inside IEND) may still decode; then it must be right.
                XCTAssertEqual(image, TestPattern.rgb(width: 6, height: 5), source)
                XCTAssertGreaterThan(length, png.count - 13, source)
            } catch let error as ImageIOError {
                XCTAssertEqual(error.path, source)
                guard case .corrupt(_, .png, let message) = error else { return XCTFail("\(source): \(error)") }
                XCTAssertFalse(message.isEmpty)
            }
        }
    }

    func testTruncatedJPEGFails() throws {
        let jpeg = EmbeddedImages.jpegRGB.fileBytes
        let directory = try TemporaryDirectory()
        for length in [3, 20, jpeg.count / 2, jpeg.count - 40] {
            let path = try directory.write(Array(jpeg.prefix(length)), to: "cut-\(length).jpg")
            assertThrows(try ImageFile.read(path: path), path: path) {
                guard case .corrupt(_, .jpeg, let message) = $0 else { return false }
                return message.hasPrefix("libjpeg:")
            }
        }
    }

    func testCorruptPNGReportsLibpngMessage() throws {
        var png = try ImageFile.encodePNG(TestPattern.rgb(width: 4, height: 4))
        png[20] ^= 0xFF // inside IHDR: the chunk CRC no longer matches
        let directory = try TemporaryDirectory()
        let path = try directory.write(png, to: "bad-crc.png")
        assertThrows(try ImageFile.read(path: path), path: path) {
            guard case .corrupt(_, .png, let message) = $0 else { return false }
            return message.hasPrefix("libpng:")
        }
    }

    func testGarbageAfterJPEGSignature() throws {
        let bytes: [UInt8] = [0xFF, 0xD8, 0xFF] + (0..<200).map { UInt8(($0 * 97) % 251) }
        assertThrows(try ImageFile.decode(bytes, source: "noise.jpg"), path: "noise.jpg") {
            guard case .corrupt(_, .jpeg, _) = $0 else { return false }
            return true
        }
    }

    func testAbsurdDimensionsAreRejectedBeforeAllocating() throws {
        // A valid-looking PNG header declaring 30000 x 30000 pixels (> 2^28), with no image data.
        let header = try ImageFile.encodeGrayPNG(width: 1, height: 1, pixels: [0])
        let forged = forgePNGSize(header, width: 30000, height: 30000)
        assertThrows(try ImageFile.decode(forged, source: "huge.png"), path: "huge.png") {
            guard case .tooLarge = $0 else { return false }
            return true
        }
    }

    // MARK: - Helpers

    private func assertThrows<T>(_ expression: @autoclosure () throws -> T, path: String,
                                 file: StaticString = #filePath, line: UInt = #line,
                                 matches: (ImageIOError) -> Bool) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            guard let error = error as? ImageIOError else {
                return XCTFail("not an ImageIOError: \(error)", file: file, line: line)
            }
            XCTAssertTrue(matches(error), "unexpected error: \(error)", file: file, line: line)
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertTrue(error.description.contains(path), error.description, file: file, line: line)
        }
    }

    /// Rewrites the IHDR width/height of a PNG and fixes the chunk CRC, so only the size check can
    /// reject it.
    private func forgePNGSize(_ png: [UInt8], width: UInt32, height: UInt32) -> [UInt8] {
        var bytes = png
        let ihdrData = 16 // signature (8) + length (4) + "IHDR" (4)
        for (offset, value) in [(ihdrData, width), (ihdrData + 4, height)] {
            for byte in 0..<4 { bytes[offset + byte] = UInt8((value >> (24 - 8 * UInt32(byte))) & 0xFF) }
        }
        let crc = crc32(bytes[12..<(ihdrData + 13)])
        for byte in 0..<4 { bytes[ihdrData + 13 + byte] = UInt8((crc >> (24 - 8 * UInt32(byte))) & 0xFF) }
        return bytes
    }

    private func crc32<Bytes: Collection>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}
