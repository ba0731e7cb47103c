import Foundation
import MTLSegImage

/// An image file embedded in the test sources, with the RGB8 pixels a correct decoder produces.
struct EmbeddedImage {
    let width: Int
    let height: Int
    /// Base64 of the file's bytes.
    let file: String
    /// Base64 of the expected interleaved RGB8 pixels.
    let expectedRGB: String

    var fileBytes: [UInt8] { [UInt8](Data(base64Encoded: file)!) }
    var expectedPixels: [UInt8] { [UInt8](Data(base64Encoded: expectedRGB)!) }
}

/// Pillow's BILINEAR resize of `TestPattern.rgb(width: sourceWidth, height: sourceHeight)`.
struct PILResizeReference {
    let sourceWidth: Int
    let sourceHeight: Int
    let targetWidth: Int
    let targetHeight: Int
    /// `Image.resize` on the RGB image: interleaved uint8, as HF's processor sees it.
    let uint8RGB: [Float]
    /// `Image.resize` on each channel as a float ("F") image, interleaved: no intermediate rounding.
    let floatRGB: [Float]
}

/// The deterministic pattern the fixture script uses; keep both definitions identical.
enum TestPattern {
    static func value(x: Int, y: Int, channel: Int) -> UInt8 {
        UInt8((x * 37 + y * 91 + channel * 53 + x * y * 13 + 11) % 256)
    }

    static func rgb(width: Int, height: Int) -> RGBImage {
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for channel in 0..<3 { pixels.append(value(x: x, y: y, channel: channel)) }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
