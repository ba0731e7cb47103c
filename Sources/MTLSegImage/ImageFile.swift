import CImageCodecs

/// Reading and writing image files. The format is found from the file's leading bytes, never
/// from its extension.
public enum ImageFile {
    /// Reads a PNG or JPEG file as RGB8, refusing one whose header declares more pixels than `budget`.
    /// - Throws: `ImageIOError` naming `path` for unreadable, unrecognised, corrupt or too large files.
    public static func read(path: String, budget: PixelBudget = PixelBudget(raisedBy: "--max-image-pixels N")) throws -> RGBImage {
        let bytes = try FileBytes.read(path: path)
        return try bytes.withUnsafeBytes { try decode($0, source: path, budget: budget) }
    }

    /// Decodes an in-memory PNG or JPEG (e.g. an MJPEG camera frame). `source` is the name used
    /// in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, source: String,
                              budget: PixelBudget = PixelBudget(raisedBy: "--max-image-pixels N")) throws -> RGBImage {
        guard let format = ImageFormat(sniffing: bytes) else {
            throw ImageIOError.unrecognizedFormat(path: source)
        }
        // The C side only reads bytes, which may alias memory of any type.
        let data = UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: UInt32 = 0
        var height: UInt32 = 0
        do {
            try callCodec { message, capacity in
                switch format {
                case .png:
                    return CImageCodecs_decodePNG(data.baseAddress, data.count, UInt64(budget.pixels), &pixels, &width, &height,
                                                  message, capacity)
                case .jpeg:
                    return CImageCodecs_decodeJPEG(data.baseAddress, data.count, UInt64(budget.pixels), &pixels, &width, &height,
                                                   message, capacity)
                }
            }
        } catch let failure as CodecFailure {
            if failure.status == CImageCodecs_TooLarge, failure.message.contains("pixel budget") {
                throw ImageIOError.tooLarge(path: source, message: failure.message + "; raise it with \(budget.raisedBy)")
            }
            throw failure.imageIOError(path: source, format: format)
        }
        let count = Int(width) * Int(height) * 3
        return RGBImage(width: Int(width), height: Int(height), pixels: takeCodecBuffer(pixels, count: count))
    }

    /// Decodes an in-memory PNG or JPEG. `source` is the name used in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>",
                              budget: PixelBudget = PixelBudget(raisedBy: "--max-image-pixels N")) throws -> RGBImage {
        try bytes.withUnsafeBytes { try decode($0, source: source, budget: budget) }
    }

    /// Writes `image` as an 8-bit RGB PNG, replacing any existing file.
    public static func writePNG(_ image: RGBImage, path: String) throws {
        try writePNGFile(pixels: image.pixels, width: image.width, height: image.height, channels: 3, path: path)
    }

    /// Writes single-channel 8-bit pixels (e.g. a class-index mask) as a grayscale PNG.
    /// `pixels` is row-major, `width * height` bytes; values are stored unchanged, so class
    /// indices survive a round trip exactly.
    public static func writeGrayPNG(width: Int, height: Int, pixels: [UInt8], path: String) throws {
        try writePNGFile(pixels: pixels, width: width, height: height, channels: 1, path: path)
    }

    /// Encodes `image` as RGB PNG bytes.
    public static func encodePNG(_ image: RGBImage) throws -> [UInt8] {
        try encodePNGBytes(pixels: image.pixels, width: image.width, height: image.height, channels: 3)
    }

    /// Encodes single-channel 8-bit pixels as grayscale PNG bytes.
    public static func encodeGrayPNG(width: Int, height: Int, pixels: [UInt8]) throws -> [UInt8] {
        try encodePNGBytes(pixels: pixels, width: width, height: height, channels: 1)
    }

    // MARK: - Private

    private static func validate(pixelCount: Int, width: Int, height: Int, channels: Int, path: String) throws {
        guard width > 0, height > 0, width <= Int(UInt32.max), height <= Int(UInt32.max) else {
            throw ImageIOError.invalidImage(path: path, reason: "invalid size \(width)x\(height)")
        }
        guard pixelCount == width * height * channels else {
            throw ImageIOError.invalidImage(
                path: path,
                reason: "\(pixelCount) bytes for \(width)x\(height)x\(channels) (expected \(width * height * channels))")
        }
    }

    private static func writePNGFile(pixels: [UInt8], width: Int, height: Int, channels: Int, path: String) throws {
        try validate(pixelCount: pixels.count, width: width, height: height, channels: channels, path: path)
        try FileBytes.replace(path: path) { temporary in
            do {
                try callCodec { message, capacity in
                    CImageCodecs_encodePNGFile(temporary, pixels, UInt32(width), UInt32(height), UInt32(channels),
                                               message, capacity)
                }
            } catch let failure as CodecFailure {
                throw failure.imageIOError(path: path, format: .png)
            }
        }
    }

    private static func encodePNGBytes(pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        let source = "<memory>"
        try validate(pixelCount: pixels.count, width: width, height: height, channels: channels, path: source)
        var data: UnsafeMutablePointer<UInt8>?
        var size = 0
        do {
            try callCodec { message, capacity in
                CImageCodecs_encodePNGMemory(pixels, UInt32(width), UInt32(height), UInt32(channels),
                                             &data, &size, message, capacity)
            }
        } catch let failure as CodecFailure {
            throw failure.imageIOError(path: source, format: .png)
        }
        return takeCodecBuffer(data, count: size)
    }
}
