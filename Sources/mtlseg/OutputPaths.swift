#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Checks made on a file a command will write, before the work that produces it starts: so that a
/// missing folder fails at once rather than after a long calibration, and an input is never replaced
/// by its own output.
enum OutputPaths {
    /// Throws unless `path` can be created or replaced: its folder exists and is writable, and it is not a folder.
    static func checkWritable(_ path: String, option: String) throws {
        let folder = Path.deletingLastComponent(path).isEmpty ? "." : Path.deletingLastComponent(path)
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ToolError("\(option) \(path): the folder '\(folder)' does not exist")
        }
        guard access(folder, W_OK) == 0 else { throw ToolError("\(option) \(path): the folder '\(folder)' is not writable") }
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            throw ToolError("\(option) \(path) is a folder; name the file to write")
        }
    }

    /// Throws if writing `path` would replace any of `inputs`: the same file under another name, through
    /// a symbolic or hard link, or the same path spelt differently.
    static func refuseOverwriting(_ inputs: [String], with path: String, option: String) throws {
        for input in inputs where sameFile(input, path) {
            throw ToolError("\(option) \(path) is the input \(input); it would be replaced. Choose another output path")
        }
    }

    /// The files that make up the model at `path`: the file, or an HF checkpoint's config and weights.
    static func modelFiles(_ path: String) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return [path] }
        return ["model.safetensors", "config.json"].map { Path.appending(path, $0) }
    }

    private static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat(), second = stat()
        if stat(a, &first) == 0, stat(b, &second) == 0 { return first.st_dev == second.st_dev && first.st_ino == second.st_ino }
        return Path.resolvingFolder(a) == Path.resolvingFolder(b)
    }
}
