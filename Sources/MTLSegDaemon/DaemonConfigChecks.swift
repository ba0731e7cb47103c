#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

extension DaemonConfig {
    /// Checks, without binding or changing anything, what starting the daemon with this configuration
    /// would find wrong with its paths and names: so that `--check-config` fails where start-up would.
    /// `file` names the configuration in the problem. `madeAtStart`: folders that will exist when the daemon
    /// starts though they may not now (the unit's runtime directories, which systemd makes before it starts
    /// the daemon and removes when it stops).
    public func checkStartup(file: String, madeAtStart: [String] = []) throws {
        try Self.checkSocketPath(socketPath, key: "socket.path", file: file, madeAtStart: madeAtStart)
        if let group = socketGroup, gid_t(group) == nil, getgrnam(group) == nil {
            throw Problem(file: file, key: "socket.group", reason: "no group named '\(group)' on this system")
        }
        if let metrics = metricsSocket {
            try Self.checkSocketPath(metrics, key: "metrics.socket", file: file, madeAtStart: madeAtStart)
            try checkSocketPaths(file: file)
        }
    }

    /// A Unix socket's path must fit sockaddr_un, lie in an existing folder (or one of `madeAtStart`), and not
    /// be taken by something other than a socket (a stale socket is replaced at start; anything else is not).
    static func checkSocketPath(_ path: String, key: String, file: String, madeAtStart: [String] = []) throws {
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard path.utf8.count < capacity else {
            throw Problem(file: file, key: key, reason: "'\(path)' is \(path.utf8.count) bytes; a Unix socket path has at most \(capacity - 1)")
        }
        let folder = Path.deletingLastComponent(path)
        var info = stat()
        if !folder.isEmpty && !(madeAtStart.contains(folder) && stat(folder, &info) != 0) {
            guard stat(folder, &info) == 0 else {
                throw Problem(file: file, key: key, reason: "the folder '\(folder)' does not exist (\(String(cString: strerror(errno))))")
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR else { throw Problem(file: file, key: key, reason: "'\(folder)' is not a folder") }
            // Start-up creates the socket there as the user running this (a unit's runtime directory, made for its
            // account, is not checked against the user checking it).
            guard madeAtStart.contains(folder) || access(folder, W_OK | X_OK) == 0 else {
                throw Problem(file: file, key: key, reason: "this user (uid \(getuid())) cannot create a socket in '\(folder)': "
                    + String(cString: strerror(errno)))
            }
        }
        if lstat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFSOCK: break
            case S_IFDIR: throw Problem(file: file, key: key, reason: "'\(path)' is a folder; name the socket file inside it")
            default: throw Problem(file: file, key: key, reason: "'\(path)' exists and is not a socket")
            }
        }
    }

    /// Whether two paths name the same place (after resolving '.', '..' and symbolic links of their folders).
    static func sameLocation(_ a: String, _ b: String) -> Bool {
        Path.resolvingFolder(a) == Path.resolvingFolder(b)
    }
}
