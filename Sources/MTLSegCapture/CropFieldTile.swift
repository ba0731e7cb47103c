import MTLSegEssentials

/// A procedural crop field seen from above, drawn once: parallel rows of green plants on brown
/// soil, with gaps where plants are missing. The tile repeats vertically (the flight direction,
/// along the rows) and is wider than the view, so frames are cheap crops of it.
struct CropFieldTile {
    let width: Int
    let height: Int
    /// RGB8, row-major.
    let pixels: [UInt8]

    init(width: Int, height: Int, rowSpacing: Int, seed: UInt64) {
        self.width = width
        self.height = height
        var random = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)

        // Soil: brown, with coarse light/dark patches (bilinear value noise that wraps vertically) and grain.
        let cell = 24
        let gridW = width / cell + 2, gridH = max(1, height / cell)
        let patches = (0 ..< gridW * gridH).map { _ in random.unit() * 2 - 1 }
        for y in 0 ..< height {
            let gy = Double(y) / Double(cell), y0 = Int(gy) % gridH, y1 = (y0 + 1) % gridH, fy = gy - gy.rounded(.down)
            for x in 0 ..< width {
                let gx = Double(x) / Double(cell), x0 = Int(gx), fx = gx - gx.rounded(.down)
                let top = patches[y0 * gridW + x0] * (1 - fx) + patches[y0 * gridW + x0 + 1] * fx
                let bottom = patches[y1 * gridW + x0] * (1 - fx) + patches[y1 * gridW + x0 + 1] * fx
                let shade = (top * (1 - fy) + bottom * fy) * 18 + (random.unit() - 0.5) * 14
                let o = (y * width + x) * 3
                pixels[o] = clampByte(118 + shade)
                pixels[o + 1] = clampByte(84 + shade * 0.8)
                pixels[o + 2] = clampByte(56 + shade * 0.6)
            }
        }

        // Plants: blobs along each row, a few missing (gaps), with a lighter centre.
        let spacing = max(8, rowSpacing)
        let step = max(4, spacing * 2 / 5)
        var rowX = spacing / 2
        while rowX < width {
            var y = Int(random.unit() * Double(step))
            while y < height {
                if random.unit() > 0.14 {
                    let radius = Double(spacing) * (0.16 + random.unit() * 0.14)
                    let cx = Double(rowX) + (random.unit() - 0.5) * Double(spacing) * 0.12
                    let tone = random.unit()
                    Self.drawPlant(&pixels, width: width, height: height, cx: cx, cy: Double(y), radius: radius, tone: tone)
                }
                y += step + Int((random.unit() - 0.5) * Double(step) * 0.5)
            }
            rowX += spacing + Int((random.unit() - 0.5) * 2)
        }
        self.pixels = pixels
    }

    /// A disk, darker at the rim, wrapping around the tile's top and bottom edges.
    private static func drawPlant(_ pixels: inout [UInt8], width: Int, height: Int, cx: Double, cy: Double, radius: Double, tone: Double) {
        let r = Int(radius.rounded(.up))
        for dy in -r ... r {
            let y = ((Int(cy) + dy) % height + height) % height
            for dx in -r ... r {
                let x = Int(cx) + dx
                guard x >= 0, x < width else { continue }
                let d = (Double(dx * dx + dy * dy)).squareRoot() / radius
                guard d <= 1 else { continue }
                let light = 1.15 - 0.45 * d
                let o = (y * width + x) * 3
                pixels[o] = clampByte((38 + 30 * tone) * light)
                pixels[o + 1] = clampByte((120 + 45 * tone) * light)
                pixels[o + 2] = clampByte((28 + 20 * tone) * light)
            }
        }
    }
}


@inline(__always) func clampByte(_ value: Double) -> UInt8 { UInt8(max(0, min(255, value.rounded()))) }
