#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegSocket

/// Gives the mask socket the configured group, so that group's members may connect.
///
/// Under the shipped unit the daemon runs with `Group=` that group, so the socket is created with
/// it and nothing is changed: chown is a privileged system call there (`SystemCallFilter=~@privileged`).
/// Elsewhere (run by hand, another unit) the daemon changes the group itself when it may.
enum SocketGroup {
    /// The group cannot be given: names the socket, the groups and what to do about it.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func give(_ group: String, to path: String) throws {
        let gid = try resolve(group, for: path)
        var info = stat()
        guard lstat(path, &info) == 0 else { throw UnixSocket.Failure(call: "stat", path: path, code: errno) }
        if info.st_gid == gid { return }
        guard chown(path, uid_t.max, gid) == 0 else {
            let code = errno
            throw Failure(description: "\(path): the socket's group is \(name(of: info.st_gid)), not \(group) ([socket] group), and changing it "
                + "failed (\(String(cString: strerror(code)))). Under systemd run the service with Group=\(group) (the shipped unit does), "
                + "so the socket is created with that group; by hand, run mtlsegd as root or as a member of \(group); "
                + "or remove [socket] group")
        }
    }

    /// A group name or number, as [socket] group gives it.
    private static func resolve(_ group: String, for path: String) throws -> gid_t {
        if let number = gid_t(group) { return number }
        if let entry = getgrnam(group) { return entry.pointee.gr_gid }
        throw Failure(description: "\(path): [socket] group: there is no group '\(group)' (create it, e.g. with systemd-sysusers, or fix the name)")
    }

    private static func name(of gid: gid_t) -> String {
        guard let entry = getgrgid(gid) else { return "\(gid)" }
        return "\(String(cString: entry.pointee.gr_name)) (\(gid))"
    }
}
