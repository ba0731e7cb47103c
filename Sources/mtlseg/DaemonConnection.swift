#if canImport(FoundationEssentials)
import Glibc
#else
import Foundation
#endif
import MTLSegSocket
import MTLSegWire

/// Connects to a daemon's socket for `mtlseg status` and `mtlseg subscribe`. A connection that fails for the
/// reasons a user meets (no daemon there, a stale socket file, a socket they may not open) says so and what
/// to do, instead of only the system call's error.
func connectToDaemon(socket: String, hello: Hello) throws -> WireClient {
    guard !socket.isEmpty else { throw ToolError("--socket is empty; name the daemon's socket (e.g. /run/mtlseg/mtlsegd.sock)") }
    var info = stat()
    if stat(socket, &info) == 0 && (info.st_mode & S_IFMT) != S_IFSOCK {
        let kind = (info.st_mode & S_IFMT) == S_IFDIR ? "a folder" : "a file"
        throw ToolError("\(socket) is \(kind), not a socket: give the path of the socket mtlsegd serves (its configuration's [socket] path)")
    }
    do {
        return try WireClient(path: socket, hello: hello)
    } catch let failure as UnixSocket.Failure where failure.call == "connect" {
        switch failure.code {
        case ENOENT:
            throw ToolError("\(socket): no such socket: no mtlsegd serves there (`systemctl status mtlsegd`; the daemon of "
                + "camera NAME, mtlsegd@NAME.service, serves /run/mtlseg/NAME/mtlsegd.sock)")
        case ECONNREFUSED:
            throw ToolError("\(socket): nobody answers: the socket file is likely left by a daemon that stopped (`systemctl status mtlsegd`)")
        case EACCES:
            throw ToolError("\(socket): permission denied: masks are for root and members of the daemon's socket group "
                + "(the package's is mtlseg-clients: `sudo usermod -aG mtlseg-clients $USER`, then log in again)")
        default:
            throw failure
        }
    } catch WireClient.Failure.refused(let refusal) where refusal.code == WireError.serverFull {
        // For `mtlseg status`: only when max_clients subscribers and both connections kept for control ones are taken.
        throw ToolError("\(socket): the daemon refused: server_full: \(refusal.message) (its [socket] max_clients; "
            + "the [metrics] socket, where configured, still answers)")
    }
}
