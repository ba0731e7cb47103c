#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// A connected or listening AF_UNIX stream socket. Errors name the path and the failing call.
public final class UnixSocket {
    public let fd: Int32
    public let path: String
    /// The file `listen` created at `path` (SocketFile.swift): only that file is ever removed.
    var boundFile: SocketFile.Identity?

    public struct Failure: Error, CustomStringConvertible {
        public let call: String
        public let path: String
        public let code: Int32

        public init(call: String, path: String, code: Int32) {
            self.call = call
            self.path = path
            self.code = code
        }
        public var description: String { "\(path): \(call) failed: \(String(cString: strerror(code)))" }
    }

    /// Takes ownership of an open socket descriptor (closed when this object goes).
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    private static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw Failure(call: "socket path longer than \(capacity - 1) bytes", path: path, code: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Connects to the socket at `path`.
    public static func connect(to path: String) throws -> UnixSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket", path: path, code: errno) }
        let socket = UnixSocket(fd: fd, path: path)
        var address = try address(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw Failure(call: "connect", path: path, code: errno) }
        return socket
    }

    /// Binds and listens at `path` with the given file mode, replacing a stale socket file left by a previous run;
    /// throws `SocketFile.InUse` when a process still answers there. `removeBoundFile()` undoes it.
    ///
    /// The file appears at `path` only once the socket listens: it is bound under a staging name beside `path`,
    /// given its mode, made to listen, then hard-linked into place. A client that waits for the file (as
    /// `until [ -S path ]` does) therefore never finds it refusing connections, which a bind in place allowed
    /// between bind and listen; and the link, like bind, fails where another file took the path meanwhile.
    public static func listen(at path: String, mode: mode_t, backlog: Int32 = 16) throws -> UnixSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket", path: path, code: errno) }
        let socket = UnixSocket(fd: fd, path: path)
        try SocketFile.removeIfStale(at: path)
        _ = try address(path) // the path itself must fit, whatever the staging name does
        // A staging name too long for sun_path (a path within a few bytes of the limit): bind in place, as before.
        let staging = stagingPath(for: path)
        let staged = (try? address(staging)) != nil
        let bindPath = staged ? staging : path
        if staged { unlink(bindPath) } // left by a process of the same pid that died between bind and link
        var address = try address(bindPath)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Failures name `path`, the one the user gave: the staging name is this function's business.
        guard result == 0 else { throw Failure(call: "bind", path: path, code: errno) }
        defer { if staged { unlink(bindPath) } } // linked into place by then, or given up
        guard chmod(bindPath, mode) == 0 else { throw Failure(call: "chmod", path: path, code: errno) }
        guard Glibc.listen(fd, backlog) == 0 else { throw Failure(call: "listen", path: path, code: errno) }
        if staged {
            guard link(bindPath, path) == 0 else { throw Failure(call: "link (the listening socket into place)", path: path, code: errno) }
        }
        socket.boundFile = SocketFile.identity(at: path)
        return socket
    }

    /// `.NAME.PID` beside `path`: this process's own, so two daemons starting at once do not share one.
    private static func stagingPath(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return "\(folder).\(name).\(getpid())"
    }

    /// Accepts one waiting connection on a listening socket, close-on-exec (accept4 is not
    /// exported by Glibc's Swift module, so the flag is set right after). nil, with errno
    /// set, when accept fails.
    public func acceptClient() -> UnixSocket? {
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { return nil }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        return UnixSocket(fd: client, path: path)
    }

    /// Waits up to `timeout` seconds for `events` (POLLIN/POLLOUT); false on timeout.
    public func wait(for events: Int16, timeout: Double) -> Bool {
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        let milliseconds = Int32(max(0, min(timeout, 3600)) * 1000)
        while true {
            let result = poll(&descriptor, 1, milliseconds)
            if result < 0 && errno == EINTR { continue }
            return result > 0
        }
    }

    /// Writes all of `bytes`, waiting at most `timeout` seconds for the peer to make room. False if it did not.
    public func writeAll(_ bytes: [UInt8], timeout: Double) -> Bool {
        var sent = 0
        let deadline = Date().addingTimeInterval(timeout)
        return bytes.withUnsafeBytes { raw in
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                if n > 0 {
                    sent += n
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    let left = deadline.timeIntervalSinceNow
                    guard left > 0, wait(for: Int16(POLLOUT), timeout: left) else { return false }
                    continue
                }
                return false
            }
            return true
        }
    }

    /// Reads what is there (up to `into.count` bytes); 0 at end of stream, nil on error or timeout. A peer that closed
    /// with our data unread resets the connection (ECONNRESET): that is its end of stream too, not an error to wait out.
    public func read(into buffer: inout [UInt8], timeout: Double) -> Int? {
        guard wait(for: Int16(POLLIN), timeout: timeout) else { return nil }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n < 0 && errno == ECONNRESET { return 0 }
        return n >= 0 ? n : nil
    }

    /// The connected peer's (pid, uid, gid), from SO_PEERCRED.
    public func peerCredentials() -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        // struct ucred is { pid_t pid; uid_t uid; gid_t gid; }; Glibc's Swift module does not export it.
        var words: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: words))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &words, &length) == 0 else { return nil }
        return (words.0, words.1, words.2)
    }

    /// The connected peer's supplementary groups, from SO_PEERGROUPS (Linux 4.13 and later): the groups
    /// of the process that connected, as they were when it connected. nil where the kernel cannot tell.
    public func peerGroups() -> [UInt32]? {
        let peerGroupsOption: Int32 = 59  // SO_PEERGROUPS, <asm-generic/socket.h>
        var groups = [UInt32](repeating: 0, count: 64)
        while true {
            var length = socklen_t(groups.count * MemoryLayout<UInt32>.size)
            if getsockopt(fd, SOL_SOCKET, peerGroupsOption, &groups, &length) == 0 {
                return Array(groups.prefix(Int(length) / MemoryLayout<UInt32>.size))
            }
            // ERANGE: more groups than room; `length` says how many bytes they need.
            guard errno == ERANGE, Int(length) > groups.count * MemoryLayout<UInt32>.size else { return nil }
            groups = [UInt32](repeating: 0, count: Int(length) / MemoryLayout<UInt32>.size)
        }
    }

    /// Shuts both directions, waking any thread blocked on the socket.
    public func shutdownBoth() { shutdown(fd, Int32(SHUT_RDWR)) }
}
