#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegImage

/// The images of a folder (PNG/JPEG by extension, sorted by name), or those a list file names (one path per line).
enum ImageList {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    static func paths(_ location: String) throws -> [String] {
        guard let isDirectory = Path.isDirectory(location) else {
            throw ToolError("\(location): no such file or folder")
        }
        if isDirectory {
            let names = try FileManager.default.contentsOfDirectory(atPath: location)
            return names.filter { extensions.contains(Path.pathExtension($0).lowercased()) }.sorted()
                .map { Path.appending(location, $0) }
        }
        let text = try String(contentsOfFile: location, encoding: .utf8)
        let base = Path.deletingLastComponent(location)
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(where: \.isWhitespace) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { $0.hasPrefix("/") ? $0 : Path.appending(base, $0) }
    }
}

/// An error the tool reports as it is, without a stack of context.
struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
