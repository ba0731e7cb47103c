/// The one reader of a size written "<width>x<height>" (decimal, e.g. "640x480"): HELLO `mask_size` (MaskSize),
/// mtlsegd's `--size` and the tool's size options. Each caller gives its own bounds; command lines lowercase the
/// text first, so that "640X480" is read too (the protocol takes only the lowercase x).
public enum WidthByHeight {
    /// Digits a side may have, leading zeros included: enough for any bound a caller gives, and no number can overflow.
    public static let maxDigits = 5

    /// The width and height `text` writes, each within `sides` and their product at most `maxPixels`; nil for
    /// anything else: not exactly two runs of 1 to `maxDigits` ASCII digits around one "x" (no sign, no space), or a
    /// size out of bounds.
    public static func parse(_ text: String, sides: ClosedRange<Int>, maxPixels: Int = .max) -> (width: Int, height: Int)? {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= maxDigits && $0.allSatisfy { $0 >= "0" && $0 <= "9" } }),
              let width = Int(parts[0]), let height = Int(parts[1]),
              sides.contains(width), sides.contains(height), width * height <= maxPixels
        else { return nil }
        return (width, height)
    }
}
