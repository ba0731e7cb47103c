/// Why reading or writing an image failed. Every case names the file so that a failure in a batch
/// of thousands points at the culprit; `description` is meant to be printed as is.
public enum ImageIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened or read (missing, permissions, a directory, ...).
    case unreadable(path: String, reason: String)
    /// The bytes start with neither the PNG nor the JPEG signature.
    case unrecognizedFormat(path: String)
    /// The codec rejected the data; `message` is libpng's or libjpeg's own explanation.
    case corrupt(path: String, format: ImageFormat, message: String)
    /// Well-formed but not decodable here (e.g. an unusual JPEG colour space).
    case unsupported(path: String, format: ImageFormat, message: String)
    /// The header declares dimensions beyond the decoder's safety limit.
    case tooLarge(path: String, message: String)
    /// The pixels handed to a writer do not describe an encodable image.
    case invalidImage(path: String, reason: String)
    /// The file could not be created or written.
    case unwritable(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case .unreadable(let path, _), .unrecognizedFormat(let path), .corrupt(let path, _, _),
             .unsupported(let path, _, _), .tooLarge(let path, _), .invalidImage(let path, _),
             .unwritable(let path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot read file: \(reason)"
        case .unrecognizedFormat(let path):
            return "\(path): not a PNG or JPEG file (unrecognised leading bytes)"
        case .corrupt(let path, let format, let message):
            return "\(path): corrupt \(format) data: \(message)"
        case .unsupported(let path, let format, let message):
            return "\(path): unsupported \(format) image: \(message)"
        case .tooLarge(let path, let message):
            return "\(path): \(message)"
        case .invalidImage(let path, let reason):
            return "\(path): cannot encode image: \(reason)"
        case .unwritable(let path, let reason):
            return "\(path): cannot write file: \(reason)"
        }
    }
}
