/// Colours for drawing class-index masks: `colors[i]` is the [r, g, b] of class `i`.
public struct Palette: Equatable, Sendable {
    public var colors: [[UInt8]]

    public init(colors: [[UInt8]]) {
        precondition(!colors.isEmpty, "a palette needs at least one colour")
        precondition(colors.allSatisfy { $0.count == 3 }, "palette colours are [r, g, b]")
        self.colors = colors
    }

    /// 256 colours, enough for any u8 mask: the PASCAL VOC palette, which most segmentation
    /// tools use, so our renderings look like the ones people compare against.
    public static let `default` = Palette.pascalVOC(count: 256)

    /// The PASCAL VOC colour map: class 0 is black, and the bits of each class index are spread
    /// across the high bits of R, G and B, so neighbouring indices get clearly different colours.
    public static func pascalVOC(count: Int) -> Palette {
        precondition(count > 0, "palette size must be positive")
        var colors: [[UInt8]] = []
        colors.reserveCapacity(count)
        for index in 0..<count {
            var bits = index
            var red = 0, green = 0, blue = 0
            for shift in stride(from: 7, through: 0, by: -1) {
                red |= (bits & 1) << shift
                green |= ((bits >> 1) & 1) << shift
                blue |= ((bits >> 2) & 1) << shift
                bits >>= 3
            }
            colors.append([UInt8(red), UInt8(green), UInt8(blue)])
        }
        return Palette(colors: colors)
    }
}
