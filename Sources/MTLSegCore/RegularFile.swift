#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// Model files are read only when they are regular files: opening a FIFO for reading waits for a writer,
/// possibly forever (a reload would hang, and the daemon with it), and a device can be endless.
enum RegularFile {
    /// Throws `ModelError.unreadable` unless `path` is a regular file (after following symbolic links).
    static func check(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ModelError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ModelError.unreadable(path: path, reason: "not a regular file") }
    }
}
