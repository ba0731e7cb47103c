import MTLSegEssentials
import XCTest

/// The one "<width>x<height>" reader: digits and a lowercase x only, within the caller's bounds.
final class WidthByHeightTests: XCTestCase {
    func testReadsSizesWithinTheCallersBounds() {
        XCTAssertEqual(WidthByHeight.parse("640x480", sides: 16 ... 8192).map { [$0.width, $0.height] }, [640, 480])
        XCTAssertEqual(WidthByHeight.parse("00016x8192", sides: 16 ... 8192).map { [$0.width, $0.height] }, [16, 8192])
        XCTAssertNil(WidthByHeight.parse("15x480", sides: 16 ... 8192))
        XCTAssertNil(WidthByHeight.parse("640x8193", sides: 16 ... 8192))
        XCTAssertEqual(WidthByHeight.parse("16384x1", sides: 1 ... 16384).map { [$0.width, $0.height] }, [16384, 1])
        XCTAssertNil(WidthByHeight.parse("3841x2160", sides: 1 ... 8192, maxPixels: 3840 * 2160))
        XCTAssertNotNil(WidthByHeight.parse("3840x2160", sides: 1 ... 8192, maxPixels: 3840 * 2160))
    }

    func testRefusesAnythingButDigitsAroundOneX() {
        for bad in ["", "x", "640x", "x480", "640X480", "640x480x1", "640xx480", "+640x480", "-1x480", "640 x480", " 640x480",
                    "000640x480", "640x480\n", "6.4x480", "٦٤٠x480"] {
            XCTAssertNil(WidthByHeight.parse(bad, sides: 1 ... 16384), bad)
        }
    }
}
