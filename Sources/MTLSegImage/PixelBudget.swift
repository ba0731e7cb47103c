/// The most pixels an image file may declare before it is decoded, and how a user raises the limit.
/// Checked against the header, so a small file declaring a huge image (a decompression bomb) is refused
/// before its pixels are allocated.
public struct PixelBudget: Equatable, Sendable {
    public var pixels: Int
    /// The option or setting that raises the budget, as the user writes it ("--max-image-pixels N").
    public var raisedBy: String

    /// 50 megapixels: any camera's photo (a 48 MP phone sensor, 8K video at 33 MP), about 150 MB decoded.
    public static let defaultPixels = 50_000_000

    public init(pixels: Int = PixelBudget.defaultPixels, raisedBy: String) {
        self.pixels = max(1, pixels)
        self.raisedBy = raisedBy
    }
}
