#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file writes that replace a file only with a complete one, with the system's reason when they fail.
///
/// The new contents go to a temporary name beside the file, which is renamed into place once complete: a
/// reader never sees a partly written file, and a write that fails halfway (a full disk) leaves the old file
/// as it was. POSIX calls rather than Foundation's `Data.write`, whose failures print as a Cocoa error code
/// ("NSCocoaErrorDomain Code=640") instead of the reason.
public enum FileReplacement {
    /// A write that failed: the file meant and why ("No space left on device").
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }

        /// The failure the system's `code` (by default the last call's errno) says.
        static func system(_ path: String, code: Int32 = errno) -> Failure { Failure(path: path, reason: String(cString: strerror(code))) }
    }

    /// Replaces `path` with whatever `write` puts at the temporary path it is given; a throwing `write`
    /// leaves `path` untouched and its error goes through unchanged.
    public static func replace(_ path: String, write: (String) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        do {
            try write(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let failure = Failure.system(path)
            unlink(temporary)
            throw failure
        }
    }

    /// Replaces `path` with `bytes` (a new file gets mode 0666 less the umask, as `open` gives).
    public static func replace(_ path: String, with bytes: UnsafeRawBufferPointer) throws {
        try replace(path) { temporary in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else { throw Failure.system(path) }
            var written = 0
            while written < bytes.count {
                let count = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    let failure = Failure.system(path, code: count < 0 ? errno : ENOSPC)
                    close(descriptor)
                    throw failure
                }
                written += count
            }
            // close reports a delayed write error (some file systems only find the disk full there).
            guard close(descriptor) == 0 else { throw Failure.system(path) }
        }
    }

    /// Replaces `path` with `bytes`.
    public static func replace(_ path: String, with bytes: some Sequence<UInt8>) throws {
        if try bytes.withContiguousStorageIfAvailable({ try replace(path, with: UnsafeRawBufferPointer($0)) }) != nil { return }
        try Array(bytes).withUnsafeBytes { try replace(path, with: $0) }
    }
}
