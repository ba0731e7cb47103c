import MTLSegCore
import XCTest

/// Scaling a mask to an image's size by nearest neighbour (how `infer` draws the engine's masks).
final class SegmentationMaskTests: XCTestCase {
    func testScalingUpRepeatsEachClassOverItsBlock() {
        let mask = SegmentationMask(width: 2, height: 2, classes: [0, 1, 2, 3])
        let scaled = mask.scaledNearest(width: 4, height: 6)
        XCTAssertEqual(scaled.width, 4)
        XCTAssertEqual(scaled.height, 6)
        XCTAssertEqual(scaled.classes, [0, 0, 1, 1,
                                        0, 0, 1, 1,
                                        0, 0, 1, 1,
                                        2, 2, 3, 3,
                                        2, 2, 3, 3,
                                        2, 2, 3, 3])
    }

    func testEachTargetPixelTakesTheSourcePixelItsCentreFallsIn() {
        // 3 → 2: centres at 0.75 and 2.25 of the source → columns 0 and 2; 3 → 5: 0.3, 0.9, 1.5 (exact half: 1), 2.1, 2.7.
        let row = SegmentationMask(width: 3, height: 1, classes: [7, 8, 9])
        XCTAssertEqual(row.scaledNearest(width: 2, height: 1).classes, [7, 9])
        XCTAssertEqual(row.scaledNearest(width: 5, height: 1).classes, [7, 7, 8, 9, 9])
        XCTAssertEqual(row.scaledNearest(width: 3, height: 1), row)
    }
}
