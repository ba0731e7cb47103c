#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCapture
import MTLSegEssentials
import MTLSegImage

/// The images of a folder (PNG/JPEG by extension, sorted by name), or those a list file names (one path per line).
enum ImageList {
    /// The images `location` names, for the option that gave it (named in every error).
    static func paths(_ location: String, option: String) throws -> [String] {
        guard let isDirectory = Path.isDirectory(location) else {
            throw ToolError("\(option) \(location): no such file or folder")
        }
        if isDirectory {
            do {
                return try ImageFolderSource.imagePaths(in: location)
            } catch {
                throw ToolError("\(option) \(location): cannot list the folder: \(errorReason(error))")
            }
        }
        let notAList = "\(option) \(location): not a folder of images nor a text file listing image paths"
        guard !ImageFolderSource.extensions.contains(Path.pathExtension(location).lowercased()) else {
            throw ToolError("\(notAList) (it is an image: give the folder it is in)")
        }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: location))
        } catch {
            throw ToolError("\(option) \(location): cannot read: \(errorReason(error))")
        }
        // A list is short UTF-8 text; anything else (an image without its extension, a binary) is not one.
        guard bytes.count <= 16 << 20, !bytes.contains(0), let text = String(data: bytes, encoding: .utf8) else {
            throw ToolError(notAList)
        }
        let base = Path.deletingLastComponent(location)
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(where: \.isWhitespace) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { $0.hasPrefix("/") ? $0 : Path.appending(base, $0) }
    }
}
