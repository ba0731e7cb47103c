/// Drawing class-index masks (one u8 class per pixel, row-major) as colour images.
///
/// Class indices beyond the end of `colors` wrap around (`class % colors.count`), so a short
/// palette never traps on an unexpected class.

/// Paints each mask pixel with its class colour.
public func colorize(mask: [UInt8], width: Int, height: Int,
                     colors: [[UInt8]] = Palette.default.colors) -> RGBImage {
    precondition(width > 0 && height > 0, "mask size must be positive")
    precondition(mask.count == width * height, "mask has \(mask.count) values for \(width)x\(height)")
    let table = ClassColorTable(colors)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for (index, classIndex) in mask.enumerated() {
        let color = table.color(of: classIndex)
        pixels[3 * index] = color.r
        pixels[3 * index + 1] = color.g
        pixels[3 * index + 2] = color.b
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// Blends class colours over `image`: `(1 - alpha) * image + alpha * colour`, rounded.
///
/// The mask may be smaller than the image (segmentation heads often predict at 1/4 resolution);
/// it is upsampled with nearest-neighbour sampling at pixel centres (PIL's NEAREST convention),
/// which keeps class boundaries crisp instead of inventing blended classes.
public func overlay(image: RGBImage, mask: [UInt8], maskWidth: Int, maskHeight: Int,
                    colors: [[UInt8]] = Palette.default.colors, alpha: Float = 0.5) -> RGBImage {
    precondition(maskWidth > 0 && maskHeight > 0, "mask size must be positive")
    precondition(mask.count == maskWidth * maskHeight,
                 "mask has \(mask.count) values for \(maskWidth)x\(maskHeight)")
    let table = ClassColorTable(colors)
    let colorWeight = min(max(alpha, 0), 1)
    let imageWeight = 1 - colorWeight
    let maskColumn = nearestSourceIndices(source: maskWidth, target: image.width)
    let maskRow = nearestSourceIndices(source: maskHeight, target: image.height)

    var result = image
    for y in 0..<image.height {
        let maskRowStart = maskRow[y] * maskWidth
        for x in 0..<image.width {
            let color = table.color(of: mask[maskRowStart + maskColumn[x]])
            let offset = (y * image.width + x) * 3
            result.pixels[offset] = blend(image.pixels[offset], color.r, imageWeight, colorWeight)
            result.pixels[offset + 1] = blend(image.pixels[offset + 1], color.g, imageWeight, colorWeight)
            result.pixels[offset + 2] = blend(image.pixels[offset + 2], color.b, imageWeight, colorWeight)
        }
    }
    return result
}

// MARK: - Helpers

/// Palette colours unpacked into tuples, so the per-pixel lookup does not touch nested arrays.
private struct ClassColorTable {
    let entries: [(r: UInt8, g: UInt8, b: UInt8)]

    init(_ colors: [[UInt8]]) {
        precondition(!colors.isEmpty, "colors must not be empty")
        precondition(colors.allSatisfy { $0.count == 3 }, "colours are [r, g, b]")
        entries = colors.map { ($0[0], $0[1], $0[2]) }
    }

    func color(of classIndex: UInt8) -> (r: UInt8, g: UInt8, b: UInt8) {
        entries[Int(classIndex) % entries.count]
    }
}

/// For each target index, the source index whose pixel contains the target pixel's centre.
private func nearestSourceIndices(source: Int, target: Int) -> [Int] {
    // floor((t + 0.5) * source / target), in integers to avoid float rounding at exact halves.
    (0..<target).map { min((2 * $0 + 1) * source / (2 * target), source - 1) }
}

private func blend(_ base: UInt8, _ color: UInt8, _ baseWeight: Float, _ colorWeight: Float) -> UInt8 {
    UInt8(min(Float(base) * baseWeight + Float(color) * colorWeight + 0.5, 255))
}
