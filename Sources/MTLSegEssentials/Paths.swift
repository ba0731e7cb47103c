import Glibc

/// The path-string operations of NSString (`appendingPathComponent`, `lastPathComponent` …) for
/// slash-separated POSIX paths; NSString is in the full Foundation, which links ICU's data.
public enum Path {
    /// `base` and `component` with a slash between them unless `base` ends with one; `base` alone
    /// when `component` is empty.
    public static func appending(_ base: String, _ component: String) -> String {
        if component.isEmpty || base.isEmpty { return base + component }
        return base.hasSuffix("/") ? base + component : base + "/" + component
    }

    /// The last component: "b.png" of "/a/b.png", "b" of "/a/b/", "/" of "/".
    public static func lastComponent(_ path: String) -> String {
        let path = normalized(path)
        if path == "/" { return path }
        return path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
    }

    /// The path without its last component: "/a" of "/a/b", "/" of "/a", "" of "b".
    public static func deletingLastComponent(_ path: String) -> String {
        let path = normalized(path)
        guard let slash = path.lastIndex(of: "/") else { return "" }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component's extension without the dot: "png" of "a/b.png"; "" for "a/.hidden" or "a/b".
    public static func pathExtension(_ path: String) -> String {
        let name = lastComponent(path)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return String(name[name.index(after: dot)...])
    }

    /// The path without the last component's extension: "a/b" of "a/b.png".
    public static func deletingPathExtension(_ path: String) -> String {
        let ext = pathExtension(path)
        guard !ext.isEmpty else { return normalized(path) }
        return String(normalized(path).dropLast(ext.count + 1))
    }

    /// Whether `path` is a folder (links followed); nil when nothing is there. (FileManager's
    /// fileExists(atPath:isDirectory:) takes an ObjCBool in Foundation and a Bool in FoundationEssentials.)
    public static func isDirectory(_ path: String) -> Bool? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT == S_IFDIR
    }

    /// `path` with its folder resolved by realpath ('.', '..', symbolic links), so that two spellings of one
    /// place compare equal; only with its slashes normalised when the folder does not exist.
    public static func resolvingFolder(_ path: String) -> String {
        let folder = deletingLastComponent(path)
        guard let real = realpath(folder.isEmpty ? "." : folder, nil) else { return appending(folder, lastComponent(path)) }
        defer { free(real) }
        return appending(String(cString: real), lastComponent(path))
    }

    /// With runs of slashes made one and no trailing slash (but "/" stays), as NSString reads paths.
    private static func normalized(_ path: String) -> String {
        var out = ""
        for character in path where !(character == "/" && out.hasSuffix("/")) { out.append(character) }
        if out.count > 1, out.hasSuffix("/") { out.removeLast() }
        return out
    }
}

extension StringProtocol {
    /// Without the leading and trailing characters that match `predicate` (NSString's
    /// trimmingCharacters(in:) for a predicate instead of a CharacterSet).
    public func trimmingCharacters(where predicate: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !predicate($0) }), let last = lastIndex(where: { !predicate($0) }) else { return "" }
        return String(self[first ... last])
    }
}
