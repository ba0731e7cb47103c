#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegSocket
import MTLSegWire

/// The masks of one inferred frame, as the pipeline hands them to the server.
public struct PublishedFrame: Sendable {
    public var sequence: UInt64
    public var captureMonotonicNanoseconds: UInt64
    public var captureRealtimeNanoseconds: UInt64
    public var latenciesMicroseconds: [UInt32]
    /// Raw class ids per task, in task order.
    public var masks: [[UInt8]]
    /// Which model made the masks (0 at start, then one more per reload): frames of a model
    /// the stream no longer describes are never sent after its STREAM_CHANGED.
    public var generation: Int = 0

    public init(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                latenciesMicroseconds: [UInt32], masks: [[UInt8]], generation: Int = 0) {
        self.generation = generation
        self.sequence = sequence
        self.captureMonotonicNanoseconds = captureMonotonicNanoseconds
        self.captureRealtimeNanoseconds = captureRealtimeNanoseconds
        self.latenciesMicroseconds = latenciesMicroseconds
        self.masks = masks
    }
}

/// Publishes frames on the Unix socket to every connected client (PROTOCOL.md).
/// Each client has its own thread and a one-frame mailbox, and at most one message
/// waits unread in its socket: a slow client gets the newest frame when it comes
/// back for one and loses the others (and is told how many), one that stops reading
/// is dropped after the timeout, and neither ever delays the pipeline or the other
/// clients (ClientSession).
public final class MaskServer: @unchecked Sendable {
    public struct Settings: Sendable {
        public var path: String
        public var mode: mode_t
        public var group: String?
        public var allowUIDs: [UInt32]
        public var allowGIDs: [UInt32]
        public var maxClients: Int
        public var clientTimeout: Double
        /// Time a new client has to send HELLO.
        public var helloTimeout: Double = 5

        public init(path: String, mode: mode_t, allowUIDs: [UInt32], allowGIDs: [UInt32], maxClients: Int, clientTimeout: Double) {
            self.path = path
            self.mode = mode
            self.allowUIDs = allowUIDs
            self.allowGIDs = allowGIDs
            self.maxClients = maxClients
            self.clientTimeout = clientTimeout
        }

        public init(_ config: DaemonConfig) {
            self.init(path: config.socketPath, mode: config.socketMode, allowUIDs: config.allowUIDs, allowGIDs: config.allowGIDs,
                      maxClients: config.maxClients, clientTimeout: config.clientTimeout)
            group = config.socketGroup
        }
    }

    public let settings: Settings
    private let allowList: AllowList
    private let lock = Lock()
    private var stream: StreamDescription
    private var generation = 0
    private var sessions: [Int: ClientSession] = [:]
    /// Counters of clients that have left, kept so totals stay true.
    private var departed: [ClientCounters] = []
    private var nextID = 1
    private var listener: UnixSocket?
    private let acceptThread = StoppableThread()
    /// Answers STATS_REQUEST: the daemon's counters as a JSON object.
    public var statsProvider: @Sendable () -> [UInt8] = { Array("{}".utf8) }

    /// `stream` describes all tasks (each client gets its subset) with encoding `.raw`.
    public init(settings: Settings, stream: StreamDescription) {
        self.settings = settings
        self.stream = stream
        allowList = AllowList(uids: settings.allowUIDs, gids: settings.allowGIDs, ownUID: getuid())
    }

    /// Binds the socket and starts accepting; returns once clients can connect.
    public func start() throws {
        let socket = try UnixSocket.listen(at: settings.path, mode: settings.mode)
        if let group = settings.group {
            do {
                try SocketGroup.give(group, to: settings.path)
            } catch {
                socket.removeBoundFile()
                throw error
            }
        }
        listener = socket
        acceptThread.start(name: "accept") { [self] thread in acceptLoop(socket, thread) }
    }

    /// Hands a frame to every client's mailbox.
    public func publish(_ frame: PublishedFrame) {
        lock.lock()
        let current = Array(sessions.values)
        lock.unlock()
        for session in current { session.offer(frame) }
    }

    /// A new model: every client gets STREAM_CHANGED before the next frame of `generation`.
    public func changeStream(_ description: StreamDescription, generation: Int) {
        lock.lock()
        stream = description
        self.generation = generation
        let current = Array(sessions.values)
        lock.unlock()
        for session in current { session.changeStream(description, generation: generation) }
    }

    public var clientCounters: [ClientCounters] {
        lock.lock()
        defer { lock.unlock() }
        return sessions.values.map(\.counters).sorted { $0.id < $1.id }
    }

    public var departedClients: [ClientCounters] {
        lock.lock()
        defer { lock.unlock() }
        return departed
    }

    public var clientCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return sessions.count
    }

    /// Stops accepting, says goodbye to every client, removes the socket file.
    public func stop() {
        // The accept thread first: once it has returned, no client joins after this list is taken.
        acceptThread.stop(wake: { listener?.shutdownBoth() })
        lock.lock()
        let current = Array(sessions.values)
        lock.unlock()
        for session in current { session.close(with: WireError(code: WireError.shuttingDown, message: "mtlsegd is stopping")) }
        for session in current { session.join() }
        listener?.removeBoundFile()
    }

    // MARK: Accepting

    private func acceptLoop(_ socket: UnixSocket, _ thread: StoppableThread) {
        while !thread.shouldStop {
            guard socket.wait(for: Int16(POLLIN), timeout: 0.2) else { continue }
            guard let client = socket.acceptClient() else {
                if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { continue }
                if thread.shouldStop { return }
                DaemonLog.warning("\(settings.path): accept failed: \(String(cString: strerror(errno)))")
                thread.sleep(seconds: 0.1)
                continue
            }
            admit(client)
        }
    }

    private func admit(_ connection: UnixSocket) {
        let peer = connection.peerCredentials() ?? (pid: -1, uid: UInt32.max, gid: UInt32.max)
        let groups = connection.peerGroups() ?? []
        if !allowList.admits(uid: peer.uid, gid: peer.gid, supplementaryGroups: groups) {
            let described = "uid \(peer.uid) gid \(peer.gid) groups \(groups.map(String.init).joined(separator: ","))"
            DaemonLog.warning("refused a client: \(described) (pid \(peer.pid)) is not on the allow-list")
            _ = connection.writeAll(MessageEncoder.encode(.error(WireError(code: WireError.notAllowed,
                                                                           message: "\(described) may not connect"))), timeout: 0.2)
            return
        }
        lock.lock()
        if sessions.count >= settings.maxClients {
            lock.unlock()
            DaemonLog.warning("refused a client (pid \(peer.pid)): \(settings.maxClients) clients already connected")
            _ = connection.writeAll(MessageEncoder.encode(.error(WireError(code: WireError.serverFull,
                                                                           message: "\(settings.maxClients) clients already connected"))), timeout: 0.2)
            return
        }
        guard let wake = WakePipe() else {
            lock.unlock()
            DaemonLog.warning("refused a client (pid \(peer.pid)): no file descriptors left (\(String(cString: strerror(errno))))")
            return
        }
        let id = nextID
        nextID += 1
        let session = ClientSession(id: id, connection: connection, wake: wake, peerUID: peer.uid, stream: stream, generation: generation,
                                    settings: settings, statsProvider: statsProvider) { [weak self] session in self?.remove(session) }
        sessions[id] = session
        lock.unlock()
        session.start()
    }

    private func remove(_ session: ClientSession) {
        lock.lock()
        if sessions.removeValue(forKey: session.id) != nil { departed.append(session.counters) }
        lock.unlock()
    }
}
