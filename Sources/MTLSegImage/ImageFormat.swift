/// Container formats ImageFile can decode, identified by their leading magic bytes.
///
/// Sniffing the content instead of trusting the extension means a JPEG saved as `.png`
/// (common with scraped datasets) still decodes, and a non-image gets a clear error.
public enum ImageFormat: String, Sendable, CustomStringConvertible {
    case png = "PNG"
    case jpeg = "JPEG"

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// SOI marker followed by the first byte of the next marker.
    private static let jpegSignature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// The format whose signature `bytes` starts with, or nil.
    public init?<Bytes: Collection>(sniffing bytes: Bytes) where Bytes.Element == UInt8 {
        if bytes.starts(with: ImageFormat.pngSignature) {
            self = .png
        } else if bytes.starts(with: ImageFormat.jpegSignature) {
            self = .jpeg
        } else {
            return nil
        }
    }

    /// A PNG's bit depth per sample from the first 25 bytes of its file (the signature, then IHDR), nil for
    /// anything else: read before decoding, which makes 8 bits of every depth.
    public static func pngBitDepth<Bytes: Collection>(header bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
        guard bytes.starts(with: pngSignature), bytes.count >= 25 else { return nil }
        return Int(bytes[bytes.index(bytes.startIndex, offsetBy: 24)])
    }

    public var description: String { rawValue }
}
