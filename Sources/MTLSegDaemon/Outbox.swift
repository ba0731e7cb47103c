import MTLSegSocket

/// Bytes for one client that the socket has not taken yet, written without ever blocking the
/// client's thread (which must go on noticing newer frames, requests and hang-ups).
struct Outbox {
    private var bytes: [UInt8] = []
    private var sent = 0

    var isEmpty: Bool { sent == bytes.count }

    mutating func append(_ message: [UInt8]) {
        if isEmpty {
            bytes.removeAll(keepingCapacity: true)
            sent = 0
        }
        bytes.append(contentsOf: message)
    }

    /// Writes what the socket takes now; the number of bytes written, nil when the peer has gone.
    mutating func flush(to socket: UnixSocket) -> Int? {
        guard !isEmpty else { return 0 }
        let written = bytes.withUnsafeBytes { socket.sendWithoutWaiting(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
        guard let written else { return nil }
        sent += written
        return written
    }
}
