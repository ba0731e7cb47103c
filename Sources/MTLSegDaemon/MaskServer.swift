#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegSocket
import MTLSegWire

/// Publishes frames on the Unix socket to every connected client (PROTOCOL.md).
/// Each client has its own thread and a mailbox holding the last 0.25 s of frames
/// (at most 32; FrameMailbox), and at most one message waits unread in its socket:
/// a client that keeps up is sent the oldest waiting frame, so it gets every one; a
/// slow client gets the newest frame when it comes back for one and loses the others
/// (and is told how many); one that stops reading is dropped after the timeout; and
/// neither ever delays the pipeline or the other clients (ClientSession).
public final class MaskServer: @unchecked Sendable {
    public struct Settings: Sendable {
        public var path: String
        public var mode: mode_t
        public var group: String?
        public var allowUIDs: [UInt32]
        public var allowGIDs: [UInt32]
        public var maxClients: Int
        public var clientTimeout: Double
        /// What HELLO `mask_size` "source" means: the capture size the daemon is configured for.
        public var sourceGrid = MaskGrid(width: 640, height: 480)
        /// Most bytes the masks at clients' own sizes may take (MaskMemoryBudget).
        public var maskMemoryBytes = 64 << 20
        /// The source's frame rate: how many frames a client's mailbox can hold (FrameMailbox's window).
        public var framesPerSecond = 15.0

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
            sourceGrid = MaskGrid(width: config.width, height: config.height)
            maskMemoryBytes = config.maskMemoryMB << 20
            framesPerSecond = config.fps
        }
    }

    /// The settings in force; `apply` (a reload) changes all but the path and the source's size.
    private var settings: Settings
    private var allowList: AllowList
    private let lock = Lock()
    private var stream: StreamDescription
    private var generation = 0
    private var sessions: [Int: ClientSession] = [:]
    /// The sessions whose HELLO asked for masks: at most `max_clients` of them.
    private var subscribers: Set<Int> = []
    /// Connections kept past `max_clients` for control connections (HELLO `"tasks": []`: `mtlseg status`, a monitor), so
    /// that a daemon whose every slot is taken by subscribers still tells an operator why. A connection in one of them that
    /// asks for masks is refused once its HELLO says so.
    static let controlSlots = 2
    /// Counters of the last clients that left (for diagnosis), oldest first, and how many have left in all: only the
    /// count is kept of the others, so a client that reconnects all day (or `mtlseg status` run by a monitor every few
    /// seconds) does not grow the daemon.
    private var departed: [ClientCounters] = []
    private var departedTotal = 0
    static let departedKept = 32
    private var nextID = 1
    /// The sizes other than the model's that connected clients want, each once (the pipeline makes them).
    private var wantedGrids: [MaskGrid] = []
    private var maskBudget: MaskMemoryBudget
    private var listener: UnixSocket?
    private let acceptThread = StoppableThread()
    /// Answers STATS_REQUEST: the daemon's counters as a JSON object.
    public var statsProvider: @Sendable () -> [UInt8] = { Array("{}".utf8) }

    /// `stream` describes all tasks (each client gets its subset) with encoding `.raw`.
    public init(settings: Settings, stream: StreamDescription) {
        self.settings = settings
        self.stream = stream
        allowList = AllowList(uids: settings.allowUIDs, gids: settings.allowGIDs, ownUID: getuid())
        maskBudget = MaskMemoryBudget(bytes: settings.maskMemoryBytes)
    }

    /// Binds the socket and starts accepting; returns once clients can connect.
    public func start() throws {
        let settings = currentSettings
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

    private var currentSettings: Settings {
        lock.lock()
        defer { lock.unlock() }
        return settings
    }

    /// A reload's socket settings, taken over live: who may connect (clients already connected whom the new
    /// allow-list refuses are told not_allowed and closed), how many, their timeout, the socket file's mode and
    /// group, the mask budget. `new` comes from the configuration a reload keeps in force (DaemonConfig.reloaded),
    /// so its source size and rate are the running ones; the path stays where the socket is bound. Returns what
    /// changed, for the log.
    public func apply(_ new: Settings) -> [String] {
        lock.lock()
        let old = settings
        settings = new
        settings.path = old.path
        maskBudget.bytes = new.maskMemoryBytes
        allowList = AllowList(uids: new.allowUIDs, gids: new.allowGIDs, ownUID: getuid())
        let list = allowList
        let current = Array(sessions.values)
        lock.unlock()

        var changed: [String] = []
        if new.allowUIDs != old.allowUIDs || new.allowGIDs != old.allowGIDs {
            changed.append("socket.allow_uids/allow_gids")
            for session in current where !list.admits(uid: session.peer.uid, gid: session.peer.gid, supplementaryGroups: session.peer.groups) {
                DaemonLog.warning("client \(session.id) (uid \(session.peer.uid)) is not on the reloaded allow-list: disconnected")
                session.close(with: WireError(code: WireError.notAllowed, message: "uid \(session.peer.uid) gid \(session.peer.gid) may no longer connect"))
            }
        }
        if new.maxClients != old.maxClients { changed.append("socket.max_clients") }
        if new.maskMemoryBytes != old.maskMemoryBytes { changed.append("socket.mask_memory_mb (for clients connecting from now on)") }
        if new.clientTimeout != old.clientTimeout {
            changed.append("socket.client_timeout_ms")
            for session in current { session.clientTimeout = new.clientTimeout }
        }
        if new.mode != old.mode {
            if chmod(old.path, new.mode) == 0 { changed.append("socket.mode") } else {
                DaemonLog.error("\(old.path): socket.mode \(String(new.mode, radix: 8)) not applied: chmod failed (\(String(cString: strerror(errno))))")
            }
        }
        if new.group != old.group, let group = new.group {
            do {
                try SocketGroup.give(group, to: old.path)
                changed.append("socket.group")
            } catch {
                DaemonLog.error("socket.group \(group) not applied: \(error)")
            }
        }
        return changed
    }

    /// Records that `session`, whose HELLO asked for masks, is one of the `max_clients` subscribers; refuses it (with the
    /// ERROR to send) when they are all there. Released when the session ends.
    func claimSubscriberSlot(for session: ClientSession) -> WireError? {
        lock.lock()
        let maxClients = settings.maxClients, full = subscribers.count >= maxClients
        if !full { subscribers.insert(session.id) }
        lock.unlock()
        guard full else { return nil }
        DaemonLog.warning("client \(session.id) (uid \(session.peer.uid)) refused: \(Self.clients(maxClients)) taking masks already connected (max_clients)")
        return WireError(code: WireError.serverFull, message: "\(Self.clients(maxClients)) taking masks already connected")
    }

    /// "1 client", "16 clients".
    private static func clients(_ count: Int) -> String { count == 1 ? "1 client" : "\(count) clients" }

    /// Records that `session` will take masks at `grid`, its own size; refuses (with the ERROR to send) when that would take
    /// the masks past `mask_memory_mb`. Released when the session ends.
    func reserveMasks(at grid: MaskGrid, for session: ClientSession) -> WireError? {
        lock.lock()
        let taskCount = stream.tasks.count, settings = self.settings
        let refused = maskBudget.admit(session.id, at: grid, taskCount: taskCount, framesPerSecond: settings.framesPerSecond)
        // Logged with the lock released: a journal that stops reading stderr must not hold up publishing.
        lock.unlock()
        if let bound = refused {
            let mib = { (bytes: Int) in String(cFormat: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
            DaemonLog.warning("client \(session.id): masks at \(grid) refused: the clients' masks would take up to \(mib(bound)), "
                + "over socket.mask_memory_mb (\(settings.maskMemoryBytes >> 20))")
            return WireError(code: WireError.overBudget,
                             message: "masks at \(grid) for \(taskCount) task(s) would take the clients' masks to \(mib(bound)), over this daemon's "
                                + "\(settings.maskMemoryBytes >> 20) MiB (its [socket] mask_memory_mb); ask for a smaller mask_size")
        }
        return nil
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

    /// The mask sizes connected clients asked for besides the model's own (nil); each frame is made at each of them.
    /// Read once per frame: it changes only when a client that asked for a size comes or goes.
    public var wantedMaskGrids: [MaskGrid] {
        lock.lock()
        defer { lock.unlock() }
        return wantedGrids
    }

    /// Gathers the sizes the sessions want, after one chose its size or left.
    private func refreshWantedGrids() {
        lock.lock()
        var grids: [MaskGrid] = []
        for session in sessions.values.sorted(by: { $0.id < $1.id }) {
            if let grid = session.wantedGrid, !grids.contains(grid) { grids.append(grid) }
        }
        if grids != wantedGrids { wantedGrids = grids }
        lock.unlock()
    }

    public var clientCounters: [ClientCounters] {
        lock.lock()
        defer { lock.unlock() }
        return sessions.values.map(\.counters).sorted { $0.id < $1.id }
    }

    /// The last clients that left (at most `departedKept`), oldest first.
    public var departedClients: [ClientCounters] {
        lock.lock()
        defer { lock.unlock() }
        return departed
    }

    /// How many clients have left since start.
    public var departedCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return departedTotal
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
        // Out of descriptors (EMFILE: LimitNOFILE= reached), a waiting client cannot be accepted to be told so; one
        // descriptor is kept in reserve to free for that: accept it, send ERROR server_full, close it.
        var spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var failing: Int32 = 0  // the errno last logged, so that a failure goes to the log once, not ten times a second
        defer { if spare >= 0 { close(spare) } }
        while !thread.shouldStop {
            guard socket.wait(for: Int16(POLLIN), timeout: 0.2) else { continue }
            guard let client = socket.acceptClient() else {
                let code = errno
                if code == EINTR || code == EAGAIN || code == ECONNABORTED { continue }
                if thread.shouldStop { return }
                if code != failing {
                    DaemonLog.warning("\(currentSettings.path): accept failed: \(String(cString: strerror(code)))"
                        + (code == EMFILE || code == ENFILE ? " (raise the unit's LimitNOFILE=, or lower [socket] max_clients)" : ""))
                    failing = code
                }
                if (code == EMFILE || code == ENFILE) && spare >= 0 {
                    close(spare)
                    if let waiting = socket.acceptClient() {
                        Self.tellOutOfDescriptors(waiting, lacking: "the connection", reason: String(cString: strerror(code)))
                    }
                    spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
                }
                thread.sleep(seconds: 0.1)
                continue
            }
            failing = 0
            admit(client)
        }
    }

    /// ERROR server_full to a client the daemon has no descriptors left to serve. `lacking` names the descriptor that
    /// could not be had (accept's, answered from the reserve, or the session's wake pipe), so that an operator reading
    /// a client's report, and the tests, can tell the two paths apart.
    private static func tellOutOfDescriptors(_ connection: UnixSocket, lacking: String, reason: String) {
        _ = connection.writeAll(MessageEncoder.encode(.error(WireError(code: WireError.serverFull,
                                                                       message: "no file descriptors left for \(lacking) (\(reason))"))), timeout: 0.2)
    }

    private func admit(_ connection: UnixSocket) {
        let peer = connection.peerCredentials() ?? (pid: -1, uid: UInt32.max, gid: UInt32.max)
        let groups = connection.peerGroups() ?? []
        lock.lock()
        let (list, settings) = (allowList, self.settings)
        lock.unlock()
        if !list.admits(uid: peer.uid, gid: peer.gid, supplementaryGroups: groups) {
            let described = "uid \(peer.uid) gid \(peer.gid) " + (groups.isEmpty ? "(no other groups)" : "groups \(groups.map(String.init).joined(separator: ","))")
            DaemonLog.warning("refused a client: \(described) (pid \(peer.pid)) is not on the allow-list")
            _ = connection.writeAll(MessageEncoder.encode(.error(WireError(code: WireError.notAllowed,
                                                                           message: "\(described) may not connect"))), timeout: 0.2)
            return
        }
        lock.lock()
        if sessions.count >= settings.maxClients + Self.controlSlots {
            lock.unlock()
            DaemonLog.warning("refused a client (pid \(peer.pid), uid \(peer.uid)): \(Self.clients(settings.maxClients)) (max_clients) "
                + "and \(Self.controlSlots) control connections already connected")
            _ = connection.writeAll(MessageEncoder.encode(.error(WireError(code: WireError.serverFull,
                                                                           message: "\(Self.clients(settings.maxClients)) and \(Self.controlSlots) control connections already connected"))), timeout: 0.2)
            return
        }
        guard let wake = WakePipe() else {
            lock.unlock()
            let reason = String(cString: strerror(errno))
            DaemonLog.warning("refused a client (pid \(peer.pid)): no file descriptors left for its wake pipe (\(reason))")
            Self.tellOutOfDescriptors(connection, lacking: "the session's wake pipe", reason: reason)
            return
        }
        let id = nextID
        nextID += 1
        let session = ClientSession(id: id, connection: connection, wake: wake, peer: ClientSession.Peer(uid: peer.uid, gid: peer.gid, groups: groups),
                                    stream: stream, generation: generation,
                                    settings: settings, statsProvider: statsProvider,
                                    claimSubscriberSlot: { [weak self] session in self?.claimSubscriberSlot(for: session) },
                                    reserveMasks: { [weak self] grid, session in self?.reserveMasks(at: grid, for: session) },
                                    onReady: { [weak self] _ in self?.refreshWantedGrids() }) { [weak self] session in self?.remove(session) }
        sessions[id] = session
        lock.unlock()
        session.start()
    }

    private func remove(_ session: ClientSession) {
        lock.lock()
        subscribers.remove(session.id)
        if sessions.removeValue(forKey: session.id) != nil {
            if departed.count == Self.departedKept { departed.removeFirst() }
            departed.append(session.counters)
            departedTotal += 1
        }
        maskBudget.release(session.id)
        lock.unlock()
        refreshWantedGrids()
    }
}
