#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// What a sender needs to hold back data its peer has not read yet: how much the kernel still
/// holds for the peer, a send buffer sized to the messages, and writes that never block.
extension UnixSocket {
    /// Bytes the kernel holds for data this end wrote and the peer has not read yet (SIOCOUTQ;
    /// on a Unix stream socket this counts the kernel's buffers, so it is a little more than the
    /// payload). 0: the peer has read everything. nil if the socket cannot tell (closed, error).
    public var unreadByPeer: Int? {
        var queued: Int32 = 0
        guard ioctl(fd, UInt(TIOCOUTQ), &queued) == 0 else { return nil }
        return Int(queued)
    }

    /// Asks the kernel to hold at most about `bytes` of unread data for the peer (SO_SNDBUF; the
    /// kernel doubles it for its bookkeeping and caps it at net.core.wmem_max).
    public func setSendBufferSize(_ bytes: Int) {
        var size = Int32(clamping: bytes)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Writes as much of `bytes` as the send buffer takes now. The count written (0: no room), nil on an error (the peer has gone).
    public func sendWithoutWaiting(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        while true {
            let n = send(fd, base, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : nil
        }
    }
}
