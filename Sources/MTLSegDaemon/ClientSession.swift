#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch
import MTLSegEssentials
import MTLSegSocket
import MTLSegWire

/// One connected consumer: its handshake, its mailbox, and the thread that writes
/// to it. The thread owns the socket; other threads only leave things in the
/// mailbox and wake it.
///
/// Delivery is paced by what the client reads. A frame is written only once the
/// client has read everything written before it (the kernel holds no unread byte
/// of ours, SIOCOUTQ); until then frames wait in the mailbox (FrameMailbox: the
/// next one is the newest, or for a client that keeps up, the oldest of the last
/// 0.25 s). So at most one frame sits in the socket, a slow reader gets the newest
/// frame whenever it comes back for one (never one the kernel held for seconds),
/// and FRAME's `dropped` counts every frame it did not get. A client is judged by
/// its reading, not by the socket's writability (a Unix socket turns writable only
/// once most of its buffer has drained): with bytes of ours unread, a client whose
/// queue has not shrunk for the client timeout is disconnected.
final class ClientSession: @unchecked Sendable {
    /// While a newer frame waits for the client to finish reading, how often its queue is looked at
    /// (the kernel tells no one when a peer has read everything).
    static let drainCheckInterval = 0.005
    /// Room for a STATS reply or STREAM_CHANGED beside one frame in the socket's send buffer.
    static let sendBufferHeadroom = 8192
    /// Most bytes read from the client in one pass of the loop: a client that sends without pause must not keep
    /// its thread reading (and away from the timeout that judges it).
    static let readPerPass = 16384
    /// Longest HELLO `name` (UTF-8 bytes): it is repeated in every STATS and log line about the client.
    static let maxNameBytes = 128
    /// Seconds a new client has to send a complete HELLO (PROTOCOL.md).
    static let helloTimeout = 5.0

    /// Who connected (SO_PEERCRED, SO_PEERGROUPS), kept so that a reloaded allow-list can be applied to the client.
    struct Peer {
        let uid: UInt32
        let gid: UInt32
        let groups: [UInt32]
    }

    let id: Int
    let peer: Peer
    private let connection: UnixSocket
    private let wake: WakePipe
    private let settings: MaskServer.Settings
    private let statsProvider: @Sendable () -> [UInt8]
    private let onExit: (ClientSession) -> Void
    private let onReady: (ClientSession) -> Void
    /// Asks the server for one of the `max_clients` slots of clients that take masks; the ERROR to refuse it with when
    /// there is none (a control connection needs none: MaskServer.controlSlots).
    private let claimSubscriberSlot: (ClientSession) -> WireError?
    /// Asks the server for room for masks at a size of the client's own; the ERROR to refuse it with when there is none.
    private let reserveMasks: (MaskGrid, ClientSession) -> WireError?
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    // Guarded by `lock`:
    private let lock = Lock()
    private var mailbox = FrameMailbox()
    private var pendingStream: StreamDescription?
    /// The model generation the client's current (or pending) description belongs to.
    private var generation: Int
    private var closing: WireError?
    /// False until the handshake is done, and for a client that asked for no task.
    private var wantsFrames = false
    /// The mask size the client asked for, when not the model's own ("model" or no `mask_size`): nil.
    private var grid: MaskGrid?
    private var statistics: ClientCounters
    private var timeout: Double

    // The client's thread's own state:
    private var stream: StreamDescription
    private var hello = Hello()
    private var taskIndices: [Int] = []
    private var decoder = MessageDecoder(limit: 1 << 16)
    private var readBuffer = [UInt8](repeating: 0, count: 4096)
    private var outbox = Outbox()
    /// A STATS_REQUEST came while the outbox still held bytes the client had not taken: it is answered (once, however
    /// many came) when the outbox empties, so a client that asks without reading cannot pile up replies.
    private var statsOwed = false
    private var pollDescriptors: [pollfd]

    init(id: Int, connection: UnixSocket, wake: WakePipe, peer: Peer, stream: StreamDescription, generation: Int,
         settings: MaskServer.Settings, statsProvider: @escaping @Sendable () -> [UInt8],
         claimSubscriberSlot: @escaping (ClientSession) -> WireError? = { _ in nil },
         reserveMasks: @escaping (MaskGrid, ClientSession) -> WireError? = { _, _ in nil },
         onReady: @escaping (ClientSession) -> Void = { _ in }, onExit: @escaping (ClientSession) -> Void) {
        self.id = id
        self.peer = peer
        self.connection = connection
        self.wake = wake
        self.stream = stream
        self.generation = generation
        self.settings = settings
        self.statsProvider = statsProvider
        self.onExit = onExit
        self.onReady = onReady
        self.claimSubscriberSlot = claimSubscriberSlot
        self.reserveMasks = reserveMasks
        statistics = ClientCounters(id: id, name: "", uid: peer.uid)
        timeout = settings.clientTimeout
        pollDescriptors = [pollfd(fd: connection.fd, events: 0, revents: 0), pollfd(fd: wake.readEnd, events: Int16(POLLIN), revents: 0)]
    }

    var counters: ClientCounters {
        lock.lock()
        defer { lock.unlock() }
        var counters = statistics
        counters.dropped = mailbox.discarded
        return counters
    }

    /// How long the client may leave bytes unread before it is disconnected (a reload may change it).
    var clientTimeout: Double {
        get {
            lock.lock()
            defer { lock.unlock() }
            return timeout
        }
        set {
            lock.lock()
            timeout = newValue
            lock.unlock()
            wake.signal()
        }
    }

    /// The mask size this client gets frames at, when it asked for one other than the model's; nil before HELLO.
    var wantedGrid: MaskGrid? {
        lock.lock()
        defer { lock.unlock() }
        return wantsFrames ? grid : nil
    }

    func start() {
        started = true
        let thread = SystemThread { [self] in
            run()
            finished.signal()
        }
        thread.name = "client-\(id)"
        thread.start()
    }

    func join() {
        if started {
            finished.wait()
            finished.signal()  // a second join returns too
        }
    }

    /// Leaves `frame` for the client.
    func offer(_ frame: PublishedFrame) {
        lock.lock()
        guard wantsFrames else { return lock.unlock() }
        guard frame.generation == generation, frame.masks(at: grid) != nil else {
            // A frame of a model this client has been told is gone (or is about to be) is not for it; nor one
            // inferred before the pipeline learnt of the size this client asked for.
            mailbox.discard(frame)
            return lock.unlock()
        }
        // Only this client's size is kept: a frame waiting here must not hold the other sizes' masks in memory.
        var own = frame
        own.masks = frame.masks(at: grid)!
        own.sized = []
        // Whether the client is still reading what it was sent, from its socket's queue now (the client's thread
        // looks only when it wakes). The connection is open while the server offers to this session.
        mailbox.put(own, whileClientReads: (connection.unreadByPeer ?? 0) > 0)
        lock.unlock()
        wake.signal()
    }

    func changeStream(_ description: StreamDescription, generation: Int) {
        lock.lock()
        pendingStream = description
        self.generation = generation
        // A frame of the old model must not follow the new description.
        mailbox.discardWaiting()
        lock.unlock()
        wake.signal()
    }

    /// Has the client's thread send `error` and end the session.
    func close(with error: WireError) {
        lock.lock()
        closing = error
        lock.unlock()
        wake.signal()
    }

    // MARK: The client's thread

    private func run() {
        defer {
            // Hang up now: the client must see the end of the stream, whoever still holds this session.
            connection.shutdownBoth()
            onExit(self)
        }
        guard handshake() else { return }
        DaemonLog.info("client \(id) (\(hello.name ?? "unnamed"), uid \(statistics.uid)) connected: \(taskIndices.count) task(s), \(hello.encoding ?? .raw)"
            + (hello.maskSize.map { ", masks \($0) (\(clientStream().maskWidth)x\(clientStream().maskHeight))" } ?? ""))
        serve()
    }

    /// Frames, stream changes and STATS replies until the client goes, stops reading, or the daemon stops.
    private func serve() {
        var lastProgress = now()
        var unread = 0  // connection.unreadByPeer at the last look
        var socketReady = true  // something to read (or a hang-up) may be waiting
        while true {
            lock.lock()
            let error = closing, newStream = pendingStream
            pendingStream = nil
            lock.unlock()
            if let error { return sayGoodbye(error) }
            let leftover = !outbox.isEmpty
            if let newStream {
                stream = newStream
                guard selectTasks(afterReload: true) else { return }
                outbox.append(MessageEncoder.encode(.streamChanged(clientStream())))
                sizeSendBuffer()
            }
            if socketReady {
                guard serviceRequests() else { return }
            }
            if statsOwed && outbox.isEmpty {
                statsOwed = false
                outbox.append(MessageEncoder.encode(.stats(statsProvider())))
            }
            guard let written = outbox.flush(to: connection), let queued = connection.unreadByPeer else { return }
            let time = now()
            // Progress: the client read something (its queue shrank or emptied, or took bytes that waited for room);
            // and bytes written into an empty queue start the clock afresh.
            if queued == 0 || queued < unread || (written > 0 && (leftover || unread == 0)) { lastProgress = time }
            unread = queued
            if unread == 0 && outbox.isEmpty, let (frame, dropped) = takeFrame() {
                send(frame, dropped: UInt32(clamping: dropped))
                guard outbox.flush(to: connection) != nil, let queued = connection.unreadByPeer else { return }
                unread = queued
                lastProgress = time
                lock.lock()
                statistics.delivered += 1
                lock.unlock()
            }
            let behind = unread > 0 || !outbox.isEmpty
            let clientTimeout = self.clientTimeout
            if behind && time - lastProgress >= clientTimeout {
                DaemonLog.warning("client \(id) read nothing for \(clientTimeout) s: disconnected")
                lock.lock()
                statistics.readTimeout = ClientCounters.ReadTimeout(lastProgress: lastProgress, disconnected: time)
                lock.unlock()
                return
            }
            var timeout: Double?
            if behind {
                timeout = lastProgress + clientTimeout - time
                if outbox.isEmpty && hasFrameWaiting { timeout = min(timeout!, Self.drainCheckInterval) }
            }
            socketReady = waitForEvents(writing: !outbox.isEmpty, timeout: timeout)
        }
    }

    /// The frame to send now that the client has read everything, and its `dropped`; none while a stream
    /// change has still to be sent first.
    private func takeFrame() -> (PublishedFrame, UInt64)? {
        lock.lock()
        defer { lock.unlock() }
        guard pendingStream == nil, closing == nil else { return nil }
        return mailbox.take()
    }

    private var hasFrameWaiting: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !mailbox.isEmpty
    }

    /// Waits for the socket (readable, or writable when `writing`), a wake-up, or `timeout` seconds (nil: no limit).
    /// True when the socket has something to read or has hung up.
    private func waitForEvents(writing: Bool, timeout: Double?) -> Bool {
        pollDescriptors[0].events = Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0)
        let milliseconds = timeout.map { Int32((max(0, min($0, 3600)) * 1000).rounded(.up)) } ?? -1
        while poll(&pollDescriptors, 2, milliseconds) < 0 && errno == EINTR {}
        if pollDescriptors[1].revents != 0 { wake.clear() }
        return pollDescriptors[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0
    }

    private func now() -> Double { Double(Clock.monotonicNanoseconds()) / 1e9 }

    /// HELLO in time and valid, answered with STREAM; else ERROR.
    private func handshake() -> Bool {
        let deadline = now() + Self.helloTimeout
        while true {
            do {
                if let message = try decoder.next() {
                    guard case let .hello(received) = message else {
                        return refuse(WireError(code: WireError.badMessage, message: "the first message must be HELLO"))
                    }
                    hello = received
                    guard (hello.name?.utf8.count ?? 0) <= Self.maxNameBytes else {
                        return refuse(WireError(code: WireError.badMessage,
                                                message: "malformed HELLO message: 'name' is longer than \(Self.maxNameBytes) bytes"))
                    }
                    // A task named twice would get two masks in every FRAME against one in STREAM (and 256 of them a
                    // mask count that does not fit its byte).
                    if let tasks = hello.tasks, let twice = tasks.enumerated().first(where: { tasks[..<$0.offset].contains($0.element) }) {
                        return refuse(WireError(code: WireError.badMessage, message: "malformed HELLO message: 'tasks' names '\(twice.element)' twice"))
                    }
                    guard hello.protocol == wireProtocolVersion else {
                        return refuse(WireError(code: WireError.unsupportedProtocol,
                                                message: "protocol \(hello.protocol) is not supported; this daemon speaks \(wireProtocolVersion)"))
                    }
                    guard selectTasks(afterReload: false) else { return false }
                    if !taskIndices.isEmpty, let error = claimSubscriberSlot(self) { return refuse(error) }
                    let chosen: MaskGrid?
                    switch resolvedMaskSize() {
                    case let .success(resolved): chosen = resolved
                    case let .failure(error): return refuse(error)
                    }
                    if let chosen, !taskIndices.isEmpty, chosen != MaskGrid(width: stream.maskWidth, height: stream.maskHeight),
                       let error = reserveMasks(chosen, self) {
                        return refuse(error)
                    }
                    lock.lock()
                    statistics.name = hello.name ?? ""
                    grid = chosen
                    // From now on frames are for this client, unless it asked for no task (STATS and stream changes only).
                    wantsFrames = !taskIndices.isEmpty
                    lock.unlock()
                    sizeSendBuffer()
                    onReady(self)
                    outbox.append(MessageEncoder.encode(.stream(clientStream())))
                    return true
                }
            } catch let error as DecodeError where error.isHTTPRequest {
                // curl or a browser at the mask socket: answered in HTTP, which it can show, rather than an ERROR message.
                DaemonLog.warning("client \(id): \(error)")
                sayGoodbye(Array(("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                    + "This is mtlsegd's mask socket: it speaks mtlseg's own protocol (PROTOCOL.md), not HTTP. "
                    + "Metrics are served on the [metrics] socket, where one is configured.\n").utf8))
                return false
            } catch let error as DecodeError {
                return refuse(WireError(code: error.wireCode, message: error.description))
            } catch {
                return refuse(WireError(code: WireError.badMessage, message: "\(error)"))
            }
            let left = deadline - now()
            guard left > 0 else { return refuse(WireError(code: WireError.timeout, message: "no HELLO within \(Self.helloTimeout) s")) }
            let readable = waitForEvents(writing: false, timeout: left)
            lock.lock()
            let error = closing
            lock.unlock()
            if let error { return refuse(error) }
            guard readable else { continue }
            guard let count = connection.read(into: &readBuffer, timeout: 0), count > 0 else { return false }
            readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< count])) }
        }
    }

    /// The task indices this client asked for, checked against the stream; after a reload to a model that
    /// lacks one of them, ERROR `unknown_task` ends the session (the client may reconnect asking for others).
    private func selectTasks(afterReload: Bool) -> Bool {
        guard let wanted = hello.tasks else {
            taskIndices = stream.tasks.map(\.index)
            return true
        }
        var indices: [Int] = []
        for name in wanted {
            guard let task = stream.tasks.first(where: { $0.name == name }) else {
                let known = stream.tasks.map(\.name).joined(separator: ", ")
                let model = afterReload ? "the reloaded model \(stream.model.name)" : "the model"
                return refuse(WireError(code: WireError.unknownTask, message: "no task '\(name)' (\(model) has: \(known))"))
            }
            indices.append(task.index)
        }
        // FRAME carries the masks in STREAM's order (the model's), whatever order HELLO named them in.
        taskIndices = indices.sorted()
        return true
    }

    /// HELLO's `mask_size` in pixels; nil: the model's output grid.
    private func resolvedMaskSize() -> Result<MaskGrid?, WireError> {
        switch hello.maskSize {
        case nil, .model?: return .success(nil)
        case let .pixels(width, height)?: return .success(MaskGrid(width: width, height: height))
        case .source?:
            let source = settings.sourceGrid
            guard source.width * source.height <= MaskSize.maxPixels else {
                return .failure(WireError(code: WireError.badMessage, message: "malformed HELLO message: 'mask_size' \"source\" is \(source), "
                    + "more than the \(MaskSize.maxPixels) pixels a mask may have; ask for a smaller \"<width>x<height>\""))
            }
            return .success(source)
        }
    }

    /// The size of this client's masks: the one it asked for, else the model's output grid.
    private var clientGrid: MaskGrid { grid ?? MaskGrid(width: stream.maskWidth, height: stream.maskHeight) }

    /// Room in the socket for one frame of this client's masks (raw, the larger encoding in practice) and a
    /// reply beside it, no more: what the client has not read yet waits in the mailbox.
    private func sizeSendBuffer() {
        let frame = MessageEncoder.frameSize(latencies: stream.latencies.count, masks: taskIndices.count,
                                             maskBytes: clientGrid.width * clientGrid.height)
        connection.setSendBufferSize(frame + Self.sendBufferHeadroom)
    }

    private func clientStream() -> StreamDescription {
        var description = stream
        description.tasks = stream.tasks.filter { taskIndices.contains($0.index) }
        description.encoding = hello.encoding ?? .raw
        description.maskWidth = clientGrid.width
        description.maskHeight = clientGrid.height
        description.maskSize = hello.maskSize
        return description
    }

    /// `frame` as FRAME, written straight into the outbox from the frame's mask blocks.
    private func send(_ frame: PublishedFrame, dropped: UInt32) {
        // offer() let in only frames made at this client's size.
        let planes = frame.masks(at: grid) ?? frame.masks
        outbox.append { out in
            MessageEncoder.appendFrame(sequence: frame.sequence, captureMonotonicNanoseconds: frame.captureMonotonicNanoseconds,
                                       captureRealtimeNanoseconds: frame.captureRealtimeNanoseconds, dropped: dropped,
                                       latenciesMicroseconds: frame.latenciesMicroseconds, maskCount: taskIndices.count,
                                       encoding: hello.encoding ?? .raw, to: &out) { i in
                let index = taskIndices[i]
                return (UInt8(index), UnsafeBufferPointer(planes.plane(index)))
            }
        }
    }

    /// Reads what the client sent (up to `readPerPass` bytes): STATS_REQUEST is answered, or owed while the client
    /// has not taken what was written before; end of stream or garbage ends the session.
    private func serviceRequests() -> Bool {
        var read = 0
        while true {
            // Messages already buffered first: a STATS_REQUEST may have come in the same read as HELLO.
            do {
                while let message = try decoder.next() {
                    guard case .statsRequest = message else {
                        return refuse(WireError(code: WireError.badMessage, message: "only STATS_REQUEST may follow HELLO (got \(message.typeName))"))
                    }
                    if outbox.isEmpty { outbox.append(MessageEncoder.encode(.stats(statsProvider()))) } else { statsOwed = true }
                }
            } catch let DecodeError.malformed(type, _) where type != "STATS_REQUEST" {
                // A message of a type a client may not send is named as such, not by what is wrong inside it.
                return refuse(WireError(code: WireError.badMessage, message: "only STATS_REQUEST may follow HELLO (got \(type))"))
            } catch let error as DecodeError {
                return refuse(WireError(code: error.wireCode, message: error.description))
            } catch {
                return refuse(WireError(code: WireError.badMessage, message: "\(error)"))
            }
            guard read < Self.readPerPass, connection.wait(for: Int16(POLLIN), timeout: 0) else { return true }
            guard let count = connection.read(into: &readBuffer, timeout: 0), count > 0 else { return false }
            read += count
            readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< count])) }
        }
    }

    /// Sends whatever is still owed, then ERROR `error` (any refusal, or the daemon stopping), for at most 0.2 s.
    private func sayGoodbye(_ error: WireError) {
        sayGoodbye(MessageEncoder.encode(.error(error)))
    }

    /// Writes `bytes` as the last thing the client gets, for at most 0.2 s.
    private func sayGoodbye(_ bytes: [UInt8]) {
        outbox.append(bytes)
        let deadline = now() + 0.2
        while !outbox.isEmpty && now() < deadline {
            guard outbox.flush(to: connection) != nil else { return }
            if !outbox.isEmpty { _ = connection.wait(for: Int16(POLLOUT), timeout: 0.02) }
        }
    }

    /// Sends ERROR and ends the session.
    private func refuse(_ error: WireError) -> Bool {
        DaemonLog.warning("client \(id): \(error)")
        sayGoodbye(error)
        return false
    }
}
