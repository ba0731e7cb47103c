#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch
import MTLSegEssentials
import MTLSegWire

/// One connected consumer: its handshake, its one-frame mailbox, and the thread
/// that writes to it. The thread owns the socket; other threads only leave
/// things in the mailbox and signal.
final class ClientSession: @unchecked Sendable {
    let id: Int
    private let connection: UnixSocket
    private let settings: MaskServer.Settings
    private let statsProvider: @Sendable () -> [UInt8]
    private let onExit: (ClientSession) -> Void
    private let condition = Condition()
    private var stream: StreamDescription
    // Guarded by `condition`:
    private var mailbox: PublishedFrame?
    private var pendingStream: StreamDescription?
    /// The model generation the client's current (or pending) description belongs to.
    private var generation: Int
    private var closing: WireError?
    private var lostSinceDelivery: UInt32 = 0
    private var statistics: ClientCounters
    private var started = false
    private let finished = DispatchSemaphore(value: 0)
    // The writer thread's own state:
    private var hello = Hello()
    private var taskIndices: [Int] = []
    private var decoder = MessageDecoder(limit: 1 << 16)
    private var readBuffer = [UInt8](repeating: 0, count: 4096)

    init(id: Int, connection: UnixSocket, peerUID: UInt32, stream: StreamDescription, generation: Int, settings: MaskServer.Settings,
         statsProvider: @escaping @Sendable () -> [UInt8], onExit: @escaping (ClientSession) -> Void) {
        self.id = id
        self.connection = connection
        self.stream = stream
        self.generation = generation
        self.settings = settings
        self.statsProvider = statsProvider
        self.onExit = onExit
        statistics = ClientCounters(id: id, name: "", uid: peerUID)
    }

    var counters: ClientCounters {
        condition.lock()
        defer { condition.unlock() }
        return statistics
    }

    func start() {
        started = true
        let thread = SystemThread { [self] in
            run()
            finished.signal()
        }
        thread.name = "mtlsegd-client-\(id)"
        thread.start()
    }

    func join() {
        if started {
            finished.wait()
            finished.signal()  // a second join returns too
        }
    }

    /// Leaves `frame` for the client; an undelivered older one is dropped.
    func offer(_ frame: PublishedFrame) {
        condition.lock()
        // A frame of another model than the one this client is (or is about to be) told of is not for it.
        guard frame.generation == generation else {
            condition.unlock()
            return
        }
        if mailbox != nil {
            statistics.dropped += 1
            lostSinceDelivery &+= 1
        }
        mailbox = frame
        condition.signal()
        condition.unlock()
    }

    func changeStream(_ description: StreamDescription, generation: Int) {
        condition.lock()
        pendingStream = description
        self.generation = generation
        // A frame of the old model must not follow the new description.
        if mailbox != nil {
            mailbox = nil
            statistics.dropped += 1
            lostSinceDelivery &+= 1
        }
        condition.signal()
        condition.unlock()
    }

    func close(with error: WireError) {
        condition.lock()
        closing = error
        condition.signal()
        condition.unlock()
        connection.shutdownBoth()
    }

    // MARK: The client's thread

    private func run() {
        defer {
            // Hang up now: the client must see the end of the stream, whoever still holds this session.
            connection.shutdownBoth()
            onExit(self)
        }
        guard handshake() else { return }
        DaemonLog.info("client \(id) (\(hello.name ?? "unnamed"), uid \(statistics.uid)) connected: \(taskIndices.count) task(s), \(hello.encoding ?? .raw)")
        while true {
            condition.lock()
            while mailbox == nil && pendingStream == nil && closing == nil {
                // Wake now and then to notice requests and hang-ups on the socket.
                if !condition.wait(until: Date().addingTimeInterval(0.05)) { break }
            }
            let frame = mailbox, newStream = pendingStream, error = closing, lost = lostSinceDelivery
            mailbox = nil
            pendingStream = nil
            if frame != nil { lostSinceDelivery = 0 }
            condition.unlock()

            if let error {
                _ = connection.writeAll(MessageEncoder.encode(.error(error)), timeout: 0.2)
                return
            }
            guard serviceRequests() else { return }
            if let newStream {
                stream = newStream
                guard selectTasks(), send(.streamChanged(clientStream())) else { return }
            }
            // A client that asked for no task (e.g. one that only wants STATS) gets no frames.
            if let frame, !taskIndices.isEmpty {
                guard send(.frame(encode(frame, dropped: lost))) else {
                    DaemonLog.warning("client \(id) took no data for \(settings.clientTimeout) s: disconnected")
                    return
                }
                condition.lock()
                statistics.delivered += 1
                condition.unlock()
            }
        }
    }

    /// HELLO in time and valid, answered with STREAM; else ERROR.
    private func handshake() -> Bool {
        let deadline = Date().addingTimeInterval(settings.helloTimeout)
        while true {
            do {
                if let message = try decoder.next() {
                    guard case let .hello(received) = message else {
                        return refuse(WireError(code: WireError.badMessage, message: "the first message must be HELLO"))
                    }
                    hello = received
                    guard hello.protocol == wireProtocolVersion else {
                        return refuse(WireError(code: WireError.unsupportedProtocol,
                                                message: "protocol \(hello.protocol) is not supported; this daemon speaks \(wireProtocolVersion)"))
                    }
                    condition.lock()
                    statistics.name = hello.name ?? ""
                    condition.unlock()
                    guard selectTasks() else { return false }
                    return send(.stream(clientStream()))
                }
            } catch let error as DecodeError {
                return refuse(WireError(code: error.wireCode, message: error.description))
            } catch {
                return refuse(WireError(code: WireError.badMessage, message: "\(error)"))
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0, let count = connection.read(into: &readBuffer, timeout: left) else {
                return refuse(WireError(code: WireError.timeout, message: "no HELLO within \(settings.helloTimeout) s"))
            }
            guard count > 0 else { return false }
            readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< count])) }
        }
    }

    /// The task indices this client asked for, checked against the stream.
    private func selectTasks() -> Bool {
        guard let wanted = hello.tasks else {
            taskIndices = stream.tasks.map(\.index)
            return true
        }
        var indices: [Int] = []
        for name in wanted {
            guard let task = stream.tasks.first(where: { $0.name == name }) else {
                let known = stream.tasks.map(\.name).joined(separator: ", ")
                return refuse(WireError(code: WireError.unknownTask, message: "no task '\(name)' (the model has: \(known))"))
            }
            indices.append(task.index)
        }
        taskIndices = indices
        return true
    }

    private func clientStream() -> StreamDescription {
        var description = stream
        description.tasks = stream.tasks.filter { taskIndices.contains($0.index) }
        description.encoding = hello.encoding ?? .raw
        return description
    }

    private func encode(_ frame: PublishedFrame, dropped: UInt32) -> FrameMessage {
        let encoding = hello.encoding ?? .raw
        let masks = taskIndices.map { index -> EncodedMask in
            let raw = frame.masks[index]
            return EncodedMask(taskIndex: UInt8(index), encoding: encoding, data: encoding == .raw ? raw : RunLength.encode(raw))
        }
        return FrameMessage(sequence: frame.sequence, captureMonotonicNanoseconds: frame.captureMonotonicNanoseconds,
                            captureRealtimeNanoseconds: frame.captureRealtimeNanoseconds, droppedForClient: dropped,
                            latenciesMicroseconds: frame.latenciesMicroseconds, masks: masks)
    }

    /// Reads whatever the client sent: STATS_REQUEST is answered, end of stream or garbage ends the session.
    private func serviceRequests() -> Bool {
        while connection.wait(for: Int16(POLLIN), timeout: 0) {
            guard let count = connection.read(into: &readBuffer, timeout: 0), count > 0 else { return false }
            readBuffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< count])) }
            do {
                while let message = try decoder.next() {
                    guard case .statsRequest = message else {
                        return refuse(WireError(code: WireError.badMessage, message: "only STATS_REQUEST may follow HELLO"))
                    }
                    guard send(.stats(statsProvider())) else { return false }
                }
            } catch let error as DecodeError {
                return refuse(WireError(code: error.wireCode, message: error.description))
            } catch {
                return refuse(WireError(code: WireError.badMessage, message: "\(error)"))
            }
        }
        return true
    }

    private func send(_ message: Message) -> Bool {
        connection.writeAll(MessageEncoder.encode(message), timeout: settings.clientTimeout)
    }

    /// Sends ERROR and ends the session.
    private func refuse(_ error: WireError) -> Bool {
        DaemonLog.warning("client \(id): \(error)")
        _ = connection.writeAll(MessageEncoder.encode(.error(error)), timeout: 0.2)
        return false
    }
}
