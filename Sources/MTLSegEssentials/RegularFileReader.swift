#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads of regular files only, with the system's reason when they fail.
///
/// Files that users name (images, configurations) are opened without blocking and refused unless they
/// are regular files: opening a FIFO for reading would otherwise wait for a writer, possibly forever (a
/// daemon's start or reload would hang with it), and a device can be endless.
public enum RegularFileReader {
    /// Why a read failed, in words ("No such file or directory", "not a regular file").
    public struct Failure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Reads the entire file at `path`.
    public static func read(path: String) throws(Failure) -> [UInt8] {
        // O_NONBLOCK changes nothing for the regular files read below, and anything else is refused.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(reason: lastErrorText()) }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Failure(reason: lastErrorText()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw Failure(reason: (status.st_mode & S_IFMT) == S_IFDIR ? "is a folder, not a file" : "not a regular file")
        }

        // The size is a hint: the loop reads until EOF, so a file that grows or shrinks while being read
        // is still handled.
        var bytes = [UInt8](repeating: 0, count: max(Int(status.st_size), 0))
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(4096, filled))) }
            let count = bytes.withUnsafeMutableBytes { buffer in
                systemRead(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: lastErrorText())
            }
            if count == 0 { break }
            filled += count
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Throws unless `path` is a regular file (after following symbolic links), checked without opening it: the
    /// system's reason when it cannot be looked at, else "not a regular file".
    public static func check(_ path: String) throws(Failure) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw Failure(reason: lastErrorText()) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw Failure(reason: "not a regular file") }
    }

    /// Whether `path` is a regular file (following a symbolic link), checked without opening it.
    public static func isRegularFile(_ path: String) -> Bool {
        (try? check(path)) != nil
    }

    private static func lastErrorText() -> String { String(cString: strerror(errno)) }
}

/// `read` is shadowed inside `RegularFileReader` by its own static method; this names the system call.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
