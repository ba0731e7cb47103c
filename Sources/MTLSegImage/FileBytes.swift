#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MTLSegEssentials

/// Whole-file reads with errno-based messages.
///
/// POSIX calls are used instead of Foundation so the error says exactly what went wrong
/// ("No such file or directory", "not a regular file") and the module stays Foundation-free.
enum FileBytes {
    /// Reads the entire file at `path` (regular files only: RegularFileReader).
    /// - Throws: `ImageIOError.unreadable` with the system's reason.
    static func read(path: String) throws -> [UInt8] {
        do {
            return try RegularFileReader.read(path: path)
        } catch {
            throw ImageIOError.unreadable(path: path, reason: error.reason)
        }
    }

    /// Writes `path` through `write`, which is given a temporary name beside it (FileReplacement): a reader,
    /// or a failure halfway, never sees a partly written file.
    static func replace(path: String, write: (String) throws -> Void) throws {
        do {
            try FileReplacement.replace(path, write: write)
        } catch let failure as FileReplacement.Failure {
            throw ImageIOError.unwritable(path: path, reason: failure.reason)
        }
    }
}
