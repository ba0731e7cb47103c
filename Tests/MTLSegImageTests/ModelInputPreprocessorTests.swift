import XCTest
@testable import MTLSegImage

final class ModelInputPreprocessorTests: XCTestCase {
    /// ImageNet's, what most models use (ModelDescription.imagenetMean and imagenetStd).
    private let mean: [Float] = [0.485, 0.456, 0.406]
    private let std: [Float] = [0.229, 0.224, 0.225]

    func testIdentitySizeIsExactNormalisation() {
        let image = TestPattern.rgb(width: 11, height: 6)
        let output = preprocess(image, width: 11, height: 6)
        let plane = 11 * 6
        for y in 0..<6 {
            for x in 0..<11 {
                for channel in 0..<3 {
                    let value = Double(image.pixels[(y * 11 + x) * 3 + channel])
                    let expected = (value / 255 - Double(mean[channel])) / Double(std[channel])
                    XCTAssertEqual(Double(output[channel * plane + y * 11 + x]), expected, accuracy: 1e-6)
                }
            }
        }
    }

    func testCustomMeanAndStd() {
        let image = RGBImage(width: 1, height: 1, pixels: [0, 255, 51])
        let processor = ModelInputPreprocessor(targetWidth: 1, targetHeight: 1, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        var output = [Float](repeating: .nan, count: processor.outputCount)
        output.withUnsafeMutableBufferPointer { processor.process(image, into: $0.baseAddress!) }
        XCTAssertEqual(output[0], -1, accuracy: 1e-6)
        XCTAssertEqual(output[1], 1, accuracy: 1e-6)
        XCTAssertEqual(output[2], -0.6, accuracy: 1e-6)
    }

    func testDownscaleMatchesPIL() {
        assertMatchesPIL(PILResizeReferences.from7x5To3x4)
        assertMatchesPIL(PILResizeReferences.from16x12To5x3)
    }

    func testUpscaleMatchesPIL() {
        assertMatchesPIL(PILResizeReferences.from4x3To9x7)
    }

    func testRowStrideSkipsPadding() {
        let image = TestPattern.rgb(width: 7, height: 5)
        let stride = 7 * 3 + 5
        var padded = [UInt8](repeating: 0xEE, count: stride * 5)
        for y in 0..<5 {
            padded.replaceSubrange(y * stride..<(y * stride + 21), with: image.pixels[(y * 21)..<(y * 21 + 21)])
        }
        let processor = ModelInputPreprocessor(targetWidth: 3, targetHeight: 4, mean: mean, std: std)
        var fromPadded = [Float](repeating: .nan, count: processor.outputCount)
        padded.withUnsafeBufferPointer { pixels in
            fromPadded.withUnsafeMutableBufferPointer {
                processor.process(rgbPixels: pixels.baseAddress!, width: 7, height: 5, rowStride: stride, into: $0.baseAddress!)
            }
        }
        XCTAssertEqual(fromPadded, preprocess(image, width: 3, height: 4))
    }

    func testReusedProcessorHandlesChangingSourceSizes() {
        // Taps are cached per source size; switching sizes must rebuild them, not reuse stale ones.
        let processor = ModelInputPreprocessor(targetWidth: 3, targetHeight: 4, mean: mean, std: std)
        let small = TestPattern.rgb(width: 7, height: 5)
        let large = TestPattern.rgb(width: 16, height: 12)
        let first = run(processor, small)
        _ = run(processor, large)
        _ = run(processor, TestPattern.rgb(width: 3, height: 4))
        XCTAssertEqual(run(processor, small), first)
        XCTAssertEqual(run(processor, large), preprocess(large, width: 3, height: 4))
    }

    func testTapsAreNormalisedAndWidenWhenDownscaling() {
        let down = BilinearResampleTaps(sourceSize: 100, targetSize: 10)
        let up = BilinearResampleTaps(sourceSize: 10, targetSize: 100)
        for taps in [down, up] {
            for output in 0..<taps.targetSize {
                let sum = (0..<taps.count[output]).reduce(Float(0)) { $0 + taps.weights[output * taps.stride + $1] }
                XCTAssertEqual(sum, 1, accuracy: 1e-6)
            }
        }
        // Downscaling by 10 averages over ~20 source pixels (antialiasing); upscaling uses 2–3.
        XCTAssertGreaterThanOrEqual(down.count[5], 19)
        XCTAssertLessThanOrEqual(up.count[50], 3)
    }

    // MARK: - Helpers

    private func preprocess(_ image: RGBImage, width: Int, height: Int) -> [Float] {
        run(ModelInputPreprocessor(targetWidth: width, targetHeight: height, mean: mean, std: std), image)
    }

    private func run(_ processor: ModelInputPreprocessor, _ image: RGBImage) -> [Float] {
        var output = [Float](repeating: .nan, count: processor.outputCount)
        output.withUnsafeMutableBufferPointer { processor.process(image, into: $0.baseAddress!) }
        return output
    }

    /// Compares against Pillow twice: with HF's uint8 pipeline, to within Pillow's rounding
    /// (1.5 levels of 255 after normalisation), and with Pillow's float resize, to float precision.
    private func assertMatchesPIL(_ reference: PILResizeReference, file: StaticString = #filePath, line: UInt = #line) {
        let image = TestPattern.rgb(width: reference.sourceWidth, height: reference.sourceHeight)
        let width = reference.targetWidth, height = reference.targetHeight
        let output = preprocess(image, width: width, height: height)
        let plane = width * height
        var worstUInt8Levels: Float = 0
        var worstFloatLevels: Float = 0
        for y in 0..<height {
            for x in 0..<width {
                for channel in 0..<3 {
                    let interleaved = (y * width + x) * 3 + channel
                    let normalised = output[channel * plane + y * width + x]
                    // Undo normalisation to compare in 0...255 levels.
                    let levels = (normalised * std[channel] + mean[channel]) * 255
                    worstUInt8Levels = max(worstUInt8Levels, abs(levels - reference.uint8RGB[interleaved]))
                    worstFloatLevels = max(worstFloatLevels, abs(levels - reference.floatRGB[interleaved]))
                    // The tolerance stated in normalised units, as the model sees it.
                    let expected = (reference.uint8RGB[interleaved] / 255 - mean[channel]) / std[channel]
                    XCTAssertEqual(normalised, expected, accuracy: 1.5 / 255 / std[channel], file: file, line: line)
                }
            }
        }
        let name = "\(reference.sourceWidth)x\(reference.sourceHeight)->\(width)x\(height)"
        XCTAssertLessThan(worstUInt8Levels, 1.0, "\(name) vs Pillow uint8", file: file, line: line)
        XCTAssertLessThan(worstFloatLevels, 0.01, "\(name) vs Pillow float", file: file, line: line)
    }
}
