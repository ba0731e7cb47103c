import Foundation
import MTLSegImage

/// The images of a folder (PNG/JPEG by extension, sorted by name), or those a list file names (one path per line).
enum ImageList {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    static func paths(_ location: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
            throw ToolError("\(location): no such file or folder")
        }
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: location)
            return names.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                .map { (location as NSString).appendingPathComponent($0) }
        }
        let text = try String(contentsOfFile: location, encoding: .utf8)
        let base = (location as NSString).deletingLastPathComponent
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { $0.hasPrefix("/") ? $0 : (base as NSString).appendingPathComponent($0) }
    }
}

/// An error the tool reports as it is, without a stack of context.
struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
