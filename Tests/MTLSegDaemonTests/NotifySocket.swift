import Foundation

/// A datagram socket standing in for systemd's NOTIFY_SOCKET: it collects what sd_notify sends.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw NSError(domain: "NotifySocket", code: Int(errno)) }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, or nil after `timeout` seconds.
    func receive(timeout: Double) -> String? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0 ..< n], as: UTF8.self) : nil
    }

    /// Datagrams as they arrive, until those collected satisfy `done` or `seconds` have passed.
    func collect(until done: ([String]) -> Bool, within seconds: Double = 10) -> [String] {
        var messages: [String] = []
        let end = Date().addingTimeInterval(seconds)
        while !done(messages) && Date() < end {
            if let message = receive(timeout: max(0.01, end.timeIntervalSinceNow)) { messages.append(message) }
        }
        return messages
    }
}
