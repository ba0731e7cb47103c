import Foundation
import XCTest
@testable import MTLSegImage

/// Image files that declare far more pixels than they hold, and files that are not files (issue #17, class 3):
/// refused from the header before decoding, and never waited on.
final class ImageBombTests: XCTestCase {
    /// A small valid PNG whose header then declares width×height (its CRC fixed, so only a size check refuses it).
    private func pngBomb(width: UInt32, height: UInt32) throws -> [UInt8] {
        var bytes = try ImageFile.encodeGrayPNG(width: 1, height: 1, pixels: [0])
        let ihdr = 16  // signature (8) + length (4) + "IHDR" (4)
        for (offset, value) in [(ihdr, width), (ihdr + 4, height)] {
            for byte in 0 ..< 4 { bytes[offset + byte] = UInt8((value >> (24 - 8 * UInt32(byte))) & 0xFF) }
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes[12 ..< ihdr + 13] {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        crc = ~crc
        for byte in 0 ..< 4 { bytes[ihdr + 13 + byte] = UInt8((crc >> (24 - 8 * UInt32(byte))) & 0xFF) }
        return bytes
    }

    /// The embedded JPEG with its frame header declaring width×height and marked progressive.
    private func jpegBomb(width: UInt16, height: UInt16) throws -> [UInt8] {
        var bytes = EmbeddedImages.jpegRGB.fileBytes
        let sof = try XCTUnwrap((0 ..< bytes.count - 9).first { bytes[$0] == 0xFF && (0xC0 ... 0xC2).contains(bytes[$0 + 1]) })
        bytes[sof + 1] = 0xC2
        bytes[sof + 5] = UInt8(height >> 8); bytes[sof + 6] = UInt8(height & 0xFF)
        bytes[sof + 7] = UInt8(width >> 8); bytes[sof + 8] = UInt8(width & 0xFF)
        return bytes
    }

    private func assertOverBudget(_ decode: () throws -> RGBImage, name: String, declared: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(), file: file, line: line) { error in
            guard case let .tooLarge(path, message) = error as? ImageIOError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(path, name, file: file, line: line)
            XCTAssertTrue(message.contains(declared) && message.contains("pixel budget") && message.contains("--max-image-pixels"), message,
                          file: file, line: line)
        }
    }

    func testBombsUnderTheFixedLimitAreRefusedByTheDefaultBudget() throws {
        // 16384² is exactly the codecs' fixed 2^28-pixel limit (it used to decode, to 4.3 GB); 12000² likewise passes it.
        let png = try pngBomb(width: 16384, height: 16384)
        assertOverBudget({ try ImageFile.decode(png, source: "bomb.png") }, name: "bomb.png", declared: "16384x16384")
        let jpeg = try jpegBomb(width: 12000, height: 12000)
        assertOverBudget({ try ImageFile.decode(jpeg, source: "bomb.jpg") }, name: "bomb.jpg", declared: "12000x12000")
    }

    func testTheBudgetIsConfigurableAndCountsPixelsNotBytes() throws {
        let image = TestPattern.rgb(width: 200, height: 100)
        let png = try ImageFile.encodePNG(image)
        let budget = { PixelBudget(pixels: $0, raisedBy: "--max-image-pixels N") }
        assertOverBudget({ try ImageFile.decode(png, source: "p.png", budget: budget(19_999)) }, name: "p.png", declared: "200x100")
        XCTAssertEqual(try ImageFile.decode(png, source: "p.png", budget: budget(20_000)).pixels, image.pixels)
        let jpeg = EmbeddedImages.jpegRGB
        let exact = jpeg.width * jpeg.height
        assertOverBudget({ try ImageFile.decode(jpeg.fileBytes, source: "j.jpg", budget: budget(exact - 1)) }, name: "j.jpg",
                         declared: "\(jpeg.width)x\(jpeg.height)")
        XCTAssertEqual(try ImageFile.decode(jpeg.fileBytes, source: "j.jpg", budget: budget(exact)).width, jpeg.width)
    }

    func testAFIFONamedLikeAnImageIsRefusedWithoutWaitingForAWriter() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("x.png")
        XCTAssertEqual(mkfifo(path, 0o644), 0)
        // Opening a FIFO for reading used to block until a writer came, forever. Run it aside and poll a deadline.
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        Thread {
            do { _ = try ImageFile.read(path: path) } catch { outcome.error = error }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "reading a FIFO did not return within 10 s")
        guard case let .unreadable(errorPath, reason) = outcome.error as? ImageIOError else { return XCTFail("\(String(describing: outcome.error))") }
        XCTAssertEqual(errorPath, path)
        XCTAssertTrue(reason.contains("not a regular file"), reason)
    }

    func testWritingAPNGReplacesTheFileWholeAndLeavesNoTemporaryFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("mask.png")
        try ImageFile.writePNG(TestPattern.rgb(width: 4, height: 3), path: path)
        try ImageFile.writePNG(TestPattern.rgb(width: 7, height: 5), path: path)
        XCTAssertEqual(try ImageFile.read(path: path).width, 7)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path), ["mask.png"])
        // A write that fails names the file: no such folder,
        let missing = directory.path("missing/mask.png")
        XCTAssertThrowsError(try ImageFile.writePNG(TestPattern.rgb(width: 2, height: 2), path: missing)) {
            guard case .unwritable? = $0 as? ImageIOError else { return XCTFail("\($0)") }
            XCTAssertEqual(($0 as? ImageIOError)?.path, missing)
        }
        // or a folder in the way, which fails only at the last step (the temporary file written, then renamed onto the
        // path) and so has a temporary file to leave behind: it does not, and the file there before is untouched.
        let taken = directory.path("taken.png")
        try FileManager.default.createDirectory(atPath: taken, withIntermediateDirectories: false)
        XCTAssertThrowsError(try ImageFile.writePNG(TestPattern.rgb(width: 2, height: 2), path: taken)) {
            guard case .unwritable? = $0 as? ImageIOError else { return XCTFail("\($0)") }
            XCTAssertEqual(($0 as? ImageIOError)?.path, taken)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).sorted(), ["mask.png", "taken.png"])
        XCTAssertEqual(try ImageFile.read(path: path).width, 7)
    }
}

private final class Outcome: @unchecked Sendable {
    var error: Error?
}
