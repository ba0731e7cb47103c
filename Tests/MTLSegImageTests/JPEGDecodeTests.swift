import XCTest
@testable import MTLSegImage

/// JPEG decoders may differ by a level or two between libjpeg-turbo versions (Pillow bundles its
/// own), so pixels are compared to Pillow's decode with a small tolerance.
final class JPEGDecodeTests: XCTestCase {
    private let tolerance = 3

    func testDecodesColourJPEG() throws {
        try assertDecodesLikePillow(EmbeddedImages.jpegRGB, name: "YCbCr")
    }

    func testDecodesGrayscaleJPEGToRGB() throws {
        let decoded = try assertDecodesLikePillow(EmbeddedImages.jpegGray, name: "grayscale")
        for pixel in stride(from: 0, to: decoded.pixels.count, by: 3) {
            XCTAssertEqual(decoded.pixels[pixel], decoded.pixels[pixel + 1])
            XCTAssertEqual(decoded.pixels[pixel], decoded.pixels[pixel + 2])
        }
    }

    func testDecodesAdobeCMYKJPEGLikePillow() throws {
        try assertDecodesLikePillow(EmbeddedImages.jpegCMYK, name: "CMYK")
    }

    func testReadsJPEGFromFile() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(EmbeddedImages.jpegRGB.fileBytes, to: "frame.jpeg")
        let image = try ImageFile.read(path: path)
        XCTAssertEqual(image.width, EmbeddedImages.jpegRGB.width)
        XCTAssertEqual(image.height, EmbeddedImages.jpegRGB.height)
    }

    @discardableResult
    private func assertDecodesLikePillow(_ fixture: EmbeddedImage, name: String,
                                         file: StaticString = #filePath, line: UInt = #line) throws -> RGBImage {
        let decoded = try ImageFile.decode(fixture.fileBytes, source: name)
        XCTAssertEqual(decoded.width, fixture.width, name, file: file, line: line)
        XCTAssertEqual(decoded.height, fixture.height, name, file: file, line: line)
        let expected = fixture.expectedPixels
        XCTAssertEqual(decoded.pixels.count, expected.count, name, file: file, line: line)
        let worst = zip(decoded.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(name): largest difference from Pillow", file: file, line: line)
        return decoded
    }
}
