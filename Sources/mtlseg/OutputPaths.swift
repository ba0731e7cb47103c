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
    /// Throws unless `path` names a file: not empty, and not a folder by its spelling ("out/", "..").
    static func checkFileName(_ path: String, option: String) throws {
        guard !path.isEmpty else { throw ToolError("\(option) is empty; name the file to write") }
        guard !path.hasSuffix("/"), ![".", ".."].contains(Path.lastComponent(path)) else {
            throw ToolError("\(option) \(path) names a folder; name the file to write")
        }
    }

    /// Throws unless `path` can be created or replaced: it names a file, its folder exists and is writable, and
    /// it is not a folder.
    static func checkWritable(_ path: String, option: String) throws {
        try checkFileName(path, option: option)
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

    /// Makes `path` a folder the command can write files into, creating it and any missing parents, before
    /// the work whose results go there: so that a bad --out fails at once, naming the option and the reason.
    static func makeFolder(_ path: String, option: String) throws {
        guard !path.isEmpty else { throw ToolError("\(option) is empty; name a folder") }
        try createFolder(path, named: path, option: option)
        guard access(path, W_OK) == 0 else { throw ToolError("\(option) \(path): the folder is not writable") }
    }

    private static func createFolder(_ folder: String, named path: String, option: String) throws {
        switch Path.isDirectory(folder) {
        case true?: return
        case false?: throw ToolError("\(option) \(path): '\(folder)' is a file, not a folder")
        case nil:
            let parent = Path.deletingLastComponent(folder)
            if !parent.isEmpty && parent != folder { try createFolder(parent, named: path, option: option) }
            guard mkdir(folder, 0o777) == 0 || errno == EEXIST else {
                throw ToolError("\(option) \(path): cannot create the folder '\(folder)': \(String(cString: strerror(errno)))")
            }
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

    /// Whether `a` and `b` are one file: the same inode where both exist, else the same path once resolved.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat(), second = stat()
        if stat(a, &first) == 0, stat(b, &second) == 0 { return first.st_dev == second.st_dev && first.st_ino == second.st_ino }
        return Path.resolvingFolder(a) == Path.resolvingFolder(b)
    }
}
