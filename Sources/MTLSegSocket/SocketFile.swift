#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// The file a listening Unix socket lives at. A daemon must neither take over a socket that
/// another live daemon serves (its clients would silently lose it) nor, when it stops, delete a
/// file that is no longer its own (a later daemon's socket at the same path).
public enum SocketFile {
    /// Which file: device and inode, as stat reports them right after bind.
    struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
    }

    /// Someone answered on the socket file in the way: another daemon serves there.
    public struct InUse: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "\(path): another process is already serving on this socket (it accepted a connection); "
                + "stop it first (systemctl stop mtlsegd) or give this one another socket path"
        }
    }

    static func identity(at path: String) -> Identity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Clears the way for bind: nothing there is fine; a socket nobody answers on (ECONNREFUSED:
    /// left by a run that did not clean up) is removed; a live socket or any other file is an error.
    static func removeIfStale(at path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw UnixSocket.Failure(call: "bind (a file that is not a socket is in the way)", path: path, code: EEXIST)
        }
        do {
            _ = try UnixSocket.connect(to: path)  // closed again at once
        } catch let failure as UnixSocket.Failure where failure.code == ECONNREFUSED || failure.code == ENOENT {
            unlink(path)
            return
        } catch let failure as UnixSocket.Failure {
            throw UnixSocket.Failure(call: "connect (to see whether the socket file in the way is still served)", path: path, code: failure.code)
        }
        throw InUse(path: path)
    }
}

extension UnixSocket {
    /// Removes the socket file, but only while it is still the one this socket's `listen` created.
    public func removeBoundFile() {
        guard let mine = boundFile, SocketFile.identity(at: path) == mine else { return }
        unlink(path)
    }
}
