import XCTest
@testable import MTLSegImage

final class PNGCodecTests: XCTestCase {
    func testRGBRoundTripThroughFile() throws {
        let directory = try TemporaryDirectory()
        let image = TestPattern.rgb(width: 13, height: 7)
        let path = directory.path("pattern.png")
        try ImageFile.writePNG(image, path: path)
        XCTAssertEqual(try ImageFile.read(path: path), image)
    }

    func testRGBRoundTripThroughMemory() throws {
        let image = TestPattern.rgb(width: 3, height: 11)
        let encoded = try ImageFile.encodePNG(image)
        XCTAssertEqual(ImageFormat(sniffing: encoded), .png)
        XCTAssertEqual(try ImageFile.decode(encoded), image)
    }

    func testGrayMaskRoundTripKeepsClassIndices() throws {
        let directory = try TemporaryDirectory()
        let width = 17, height = 5
        let mask = (0..<(width * height)).map { UInt8(($0 * 7) % 256) }
        let path = directory.path("mask.png")
        try ImageFile.writeGrayPNG(width: width, height: height, pixels: mask, path: path)

        // Gray decodes to RGB with the value replicated, so every channel holds the class index.
        let decoded = try ImageFile.read(path: path)
        XCTAssertEqual(decoded.width, width)
        XCTAssertEqual(decoded.height, height)
        XCTAssertEqual(decoded.pixels, mask.flatMap { [$0, $0, $0] })

        let encoded = try ImageFile.encodeGrayPNG(width: width, height: height, pixels: mask)
        XCTAssertEqual(try ImageFile.decode(encoded).pixels, decoded.pixels)
    }

    func testFormatIsSniffedFromContentNotExtension() throws {
        let directory = try TemporaryDirectory()
        let image = TestPattern.rgb(width: 4, height: 4)
        let path = try directory.write(try ImageFile.encodePNG(image), to: "actually-a-png.jpg")
        XCTAssertEqual(try ImageFile.read(path: path), image)
    }

    func testDecodesPNGVariants() throws {
        let variants: [(String, EmbeddedImage)] = [
            ("1-bit gray", EmbeddedImages.gray1Bit),
            ("16-bit gray", EmbeddedImages.gray16Bit),
            ("gray + alpha", EmbeddedImages.grayAlpha),
            ("RGBA", EmbeddedImages.rgba),
            ("16-bit RGB", EmbeddedImages.rgb16Bit),
            ("4-bit palette with tRNS", EmbeddedImages.palette4BitTransparent),
            ("Adam7 interlaced RGB", EmbeddedImages.interlacedRGB),
        ]
        for (name, fixture) in variants {
            let decoded = try ImageFile.decode(fixture.fileBytes, source: name)
            XCTAssertEqual(decoded.width, fixture.width, name)
            XCTAssertEqual(decoded.height, fixture.height, name)
            XCTAssertEqual(decoded.pixels, fixture.expectedPixels, name)
        }
    }

    func testWriterRejectsMismatchedPixelCount() {
        XCTAssertThrowsError(try ImageFile.writeGrayPNG(width: 4, height: 4, pixels: [1, 2, 3], path: "/tmp/never.png")) {
            guard case ImageIOError.invalidImage(let path, _) = $0 else { return XCTFail("unexpected \($0)") }
            XCTAssertEqual(path, "/tmp/never.png")
        }
    }

    func testWriteToMissingDirectoryNamesThePath() {
        let path = "/nonexistent-directory-\(UUID().uuidString)/out.png"
        XCTAssertThrowsError(try ImageFile.writePNG(TestPattern.rgb(width: 2, height: 2), path: path)) {
            guard case ImageIOError.unwritable = $0 else { return XCTFail("unexpected \($0)") }
            XCTAssertEqual(($0 as? ImageIOError)?.path, path)
            XCTAssertTrue(String(describing: $0).contains(path))
        }
    }
}
