/// A V4L2 pixel format code ("YUYV", "MJPG", "RGB3"): four ASCII bytes, little-endian in a UInt32.
public struct FourCC: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `code` must be four ASCII characters, e.g. "YUYV"; shorter codes are padded with spaces.
    public init(_ code: String) {
        var bytes = Array(code.utf8.prefix(4))
        while bytes.count < 4 { bytes.append(0x20) }
        rawValue = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    public static let rgb24 = FourCC("RGB3")
    public static let yuyv = FourCC("YUYV")
    public static let mjpeg = FourCC("MJPG")

    /// The four characters, trailing spaces removed ("Y8  " → "Y8"); "BE" variants keep their high bit as "-BE".
    public var description: String {
        let bigEndian = rawValue & 0x8000_0000 != 0
        let bytes = (0 ..< 4).map { UInt8((rawValue >> (8 * UInt32($0))) & (bigEndian && $0 == 3 ? 0x7f : 0xff)) }
        let text = String(decoding: bytes.map { (0x20 ..< 0x7f).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        let trimmed = text.hasSuffix(" ") ? String(text.reversed().drop { $0 == " " }.reversed()) : text
        return bigEndian ? trimmed + "-BE" : trimmed
    }
}
