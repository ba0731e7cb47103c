import XCTest
@testable import MTLSegImage

final class MaskRenderingTests: XCTestCase {
    func testDefaultPaletteIsPascalVOC() {
        let colors = Palette.default.colors
        XCTAssertEqual(colors.count, 256)
        XCTAssertEqual(colors[0], [0, 0, 0])
        XCTAssertEqual(colors[1], [128, 0, 0])
        XCTAssertEqual(colors[2], [0, 128, 0])
        XCTAssertEqual(colors[3], [128, 128, 0])
        XCTAssertEqual(colors[15], [192, 128, 128]) // VOC "person"
        XCTAssertEqual(Set(colors.map { $0 }).count, 256, "colours must be distinct")
    }

    func testColorizePaintsClassColours() {
        let colors: [[UInt8]] = [[0, 0, 0], [255, 0, 0], [0, 0, 255]]
        let image = colorize(mask: [0, 1, 2, 1, 4, 0], width: 3, height: 2, colors: colors)
        XCTAssertEqual(image.width, 3)
        XCTAssertEqual(image.height, 2)
        XCTAssertEqual(image.pixels, [0, 0, 0, 255, 0, 0, 0, 0, 255,
                                      255, 0, 0, 255, 0, 0, 0, 0, 0]) // class 4 wraps to 4 % 3 = 1
    }

    func testOverlayBlendsAtFullResolution() {
        let image = RGBImage(width: 2, height: 1, pixels: [100, 100, 100, 200, 0, 50])
        let result = overlay(image: image, mask: [1, 0], maskWidth: 2, maskHeight: 1,
                             colors: [[0, 0, 0], [255, 255, 255]], alpha: 0.25)
        XCTAssertEqual(result.pixels, [139, 139, 139, 150, 0, 38])
    }

    func testOverlayUpsamplesQuarterResolutionMaskNearest() {
        let image = RGBImage(width: 8, height: 4) // black
        let mask: [UInt8] = [1, 2] // 2x1, i.e. 1/4 width and height
        let colors: [[UInt8]] = [[0, 0, 0], [200, 0, 0], [0, 100, 0]]
        let result = overlay(image: image, mask: mask, maskWidth: 2, maskHeight: 1, colors: colors, alpha: 1)
        XCTAssertEqual(result.width, 8)
        XCTAssertEqual(result.height, 4)
        for y in 0..<4 {
            for x in 0..<8 {
                let pixel = result[x: x, y: y]
                let expected: (UInt8, UInt8, UInt8) = x < 4 ? (200, 0, 0) : (0, 100, 0)
                XCTAssertTrue(pixel == expected, "(\(x), \(y)) = \(pixel)")
            }
        }
    }

    func testOverlayWithZeroAlphaKeepsImage() {
        let image = TestPattern.rgb(width: 5, height: 3)
        let result = overlay(image: image, mask: [UInt8](repeating: 7, count: 15), maskWidth: 5, maskHeight: 3, alpha: 0)
        XCTAssertEqual(result, image)
    }
}
