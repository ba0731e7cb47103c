#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Model files are read only when they are regular files: opening a FIFO for reading waits for a writer,
/// possibly forever (a reload would hang, and the daemon with it), and a device can be endless.
enum RegularFile {
    /// Throws `ModelError.unreadable` unless `path` is a regular file (after following symbolic links).
    static func check(_ path: String) throws {
        do {
            try RegularFileReader.check(path)
        } catch {
            throw ModelError.unreadable(path: path, reason: error.reason)
        }
    }
}
