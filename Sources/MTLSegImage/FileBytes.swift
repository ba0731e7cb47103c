#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads with errno-based messages.
///
/// POSIX calls are used instead of Foundation so the error says exactly what went wrong
/// ("No such file or directory", "Is a directory") and the module stays Foundation-free.
enum FileBytes {
    /// Reads the entire file at `path`.
    /// - Throws: `ImageIOError.unreadable` with the system's reason.
    static func read(path: String) throws -> [UInt8] {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, possibly forever.
        // It changes nothing for the regular files read below, and anything else is refused.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw ImageIOError.unreadable(path: path, reason: lastErrorText()) }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ImageIOError.unreadable(path: path, reason: lastErrorText())
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw ImageIOError.unreadable(path: path, reason: "not a regular file")
        }

        // The size is a hint: the loop below reads until EOF, so a file that grows or shrinks
        // while being read is still handled.
        var bytes = [UInt8](repeating: 0, count: max(Int(status.st_size), 0))
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(4096, filled))) }
            let count = bytes.withUnsafeMutableBytes { buffer in
                systemRead(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ImageIOError.unreadable(path: path, reason: lastErrorText())
            }
            if count == 0 { break }
            filled += count
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Writes `path` through `write`, which is given a temporary name beside it, then renames that into
    /// place: a reader, or a failure halfway, never sees a partly written file, and an existing file is
    /// replaced only by a complete one.
    static func replace(path: String, write: (String) throws -> Void) throws {
        let temporary = path + ".tmp-\(getpid())"
        do {
            try write(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = lastErrorText()
            unlink(temporary)
            throw ImageIOError.unwritable(path: path, reason: reason)
        }
    }

    private static func lastErrorText() -> String {
        String(cString: strerror(errno))
    }
}

/// `read` is shadowed inside `FileBytes` by its own static method; this names the system call.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
