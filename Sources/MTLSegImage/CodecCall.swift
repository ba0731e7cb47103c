import CImageCodecs

/// Result of one CImageCodecs call: its status and the message it wrote on failure.
struct CodecFailure: Error {
    let status: CImageCodecs_Status
    let message: String

    /// Maps the C status to the public error for `path`.
    func imageIOError(path: String, format: ImageFormat) -> ImageIOError {
        switch status {
        case CImageCodecs_TooLarge:
            return .tooLarge(path: path, message: message)
        case CImageCodecs_Unsupported:
            return .unsupported(path: path, format: format, message: message)
        case CImageCodecs_InvalidArgument:
            return .invalidImage(path: path, reason: message)
        case CImageCodecs_IOError:
            return .unwritable(path: path, reason: message)
        default: // CorruptData, OutOfMemory (libpng reports its own allocation failures as errors too)
            return .corrupt(path: path, format: format, message: message)
        }
    }
}

/// Calls `body` with a message buffer sized for libpng/libjpeg messages, and throws
/// `CodecFailure` when it returns anything but `CImageCodecs_OK`.
func callCodec(_ body: (UnsafeMutablePointer<CChar>, Int) -> CImageCodecs_Status) throws {
    // JMSG_LENGTH_MAX is 200 and libpng messages are shorter; 512 leaves room for our prefixes.
    let capacity = 512
    try withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
        let base = buffer.baseAddress!
        base[0] = 0
        let status = body(base, capacity)
        guard status == CImageCodecs_OK else {
            base[capacity - 1] = 0
            throw CodecFailure(status: status, message: String(cString: base))
        }
    }
}

/// Copies a codec-allocated buffer into a Swift array and releases it.
func takeCodecBuffer(_ buffer: UnsafeMutablePointer<UInt8>?, count: Int) -> [UInt8] {
    defer { CImageCodecs_free(buffer) }
    guard let buffer, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: buffer, count: count))
}
