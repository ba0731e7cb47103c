#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// A V4L2 camera as a frame source: opens the node (a /dev/video* path or a /dev/v4l/by-id link),
/// negotiates the nearest supported size, rate and a native format that libv4lconvert turns into
/// RGB24, and streams from mmap buffers on its own thread. Losing the device (ENODEV, EIO, no frame
/// within `timeout`, any failed call) tears everything down and reopens it with exponential backoff,
/// reported as `.reconnecting`; the source itself never gives up until `stop`.
public final class V4L2Camera: FrameSource {
    public struct Timing: Equatable, Sendable {
        /// No frame for this long counts as a lost device.
        public var timeout: Double
        /// The first wait before reopening; doubled after each failed open, up to `maximumBackoff`.
        public var initialBackoff: Double
        public var maximumBackoff: Double
        /// How long one poll waits before checking for `stop`.
        public var pollMilliseconds: Int32

        public init(timeout: Double = 2, initialBackoff: Double = 0.5, maximumBackoff: Double = 8, pollMilliseconds: Int32 = 50) {
            self.timeout = timeout
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.pollMilliseconds = pollMilliseconds
        }
    }

    public let path: String
    public let request: CameraRequest
    public let timing: Timing
    private let device: VideoDevice
    private let thread = StoppableThread()
    private let status = SourceStatus()
    private let nameLock = Lock()
    private var negotiated: String?

    /// Nothing is opened until `start`. `device` is the system-call layer (a fake in tests).
    public init(path: String, request: CameraRequest = CameraRequest(), timing: Timing = Timing(),
                device: VideoDevice = LibV4L2Device()) {
        self.path = path
        self.request = request
        self.timing = timing
        self.device = device
    }

    /// "/dev/video0 YUYV 640x480 @30" once negotiated (the device's native format), else the path.
    public var name: String {
        nameLock.lock()
        defer { nameLock.unlock() }
        return negotiated ?? path
    }

    public var counters: SourceCounters { status.counters }
    public var state: SourceState { status.state }

    public func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void) {
        status.reset(stateChanged: stateChanged)
        status.set(.starting)
        thread.start(name: SystemThread.name("cap-", Path.lastComponent(path))) { [self] thread in
            run(thread, deliver: deliver)
            status.set(.stopped)
        }
    }

    public func stop() {
        thread.stop()
    }

    // MARK: - The capture thread

    /// Open, stream until something fails, tear down, wait, repeat; until stop.
    private func run(_ thread: StoppableThread, deliver: (Frame) -> Void) {
        var backoff = timing.initialBackoff
        var openedBefore = false
        var sequence = SequenceContinuation()
        while !thread.shouldStop {
            status.update { $0.openAttempts += 1 }
            let stream = V4L2Stream(path: path, device: device)
            do {
                try stream.open(request)
            } catch {
                status.set(.reconnecting(reason: String(describing: error), retryInSeconds: backoff))
                thread.sleep(seconds: backoff)
                backoff = min(backoff * 2, timing.maximumBackoff)
                continue
            }
            if openedBefore { status.update { $0.reopened += 1 } }
            openedBefore = true
            backoff = timing.initialBackoff
            recordName(stream)
            sequence.streamOpened()
            status.set(.streaming)
            do {
                try pump(stream, thread, &sequence, deliver)
                stream.close()
            } catch {
                stream.close()
                if thread.shouldStop { break }
                status.set(.reconnecting(reason: String(describing: error), retryInSeconds: backoff))
                thread.sleep(seconds: backoff)
                backoff = min(backoff * 2, timing.maximumBackoff)
            }
        }
    }

    /// Polls and delivers the newest frame of each wake-up until stop (returns) or failure (throws).
    private func pump(_ stream: V4L2Stream, _ thread: StoppableThread, _ sequence: inout SequenceContinuation,
                      _ deliver: (Frame) -> Void) throws {
        var lastFrameAt = Clock.monotonicNanoseconds()
        var rgb: [UInt8] = []
        let width = Int(stream.format.width), height = Int(stream.format.height)
        while !thread.shouldStop {
            switch stream.poll(milliseconds: timing.pollMilliseconds) {
            case .failed(let code):
                throw CaptureError.systemCall(device: path, call: "poll", errno: code)
            case .timedOut:
                let silent = Double(Clock.monotonicNanoseconds() - lastFrameAt) / 1e9
                if silent > timing.timeout { throw CaptureError.timeout(device: path, seconds: silent) }
                continue
            case .ready:
                break
            }
            guard let raw = try stream.dequeueNewest() else { continue }
            let now = Clock.monotonicNanoseconds(), wallNow = Clock.realtimeNanoseconds()
            lastFrameAt = now
            try stream.convertToRGB24(raw.bytes, into: &rgb)
            let monotonic = min(raw.monotonicNanoseconds ?? now, now)
            let frame = Frame(width: width, height: height, pixels: rgb, sequence: sequence.next(driver: raw.sequence),
                              monotonicNanoseconds: monotonic, realtimeNanoseconds: wallNow - (now - monotonic))
            status.update {
                $0.captured += 1
                $0.droppedByDriver += raw.droppedByDriver
            }
            if thread.shouldStop { return }
            deliver(frame)
        }
    }

    private func recordName(_ stream: V4L2Stream) {
        let f = stream.format
        let rate = stream.framesPerSecond.map { " @" + FrameInterval(numerator: 1000, denominator: UInt32(($0 * 1000).rounded())).description } ?? ""
        nameLock.lock()
        negotiated = "\(path) \(FourCC(rawValue: f.pixelformat)) \(f.width)x\(f.height)\(rate)"
        nameLock.unlock()
    }
}

/// Turns driver sequence numbers, which restart with every STREAMON, into one increasing sequence:
/// the first frame after a reopen follows the last one delivered before it.
struct SequenceContinuation {
    private var offset: Int64 = 0
    private var lastDelivered: UInt64?
    private var awaitingFirst = true

    mutating func streamOpened() { awaitingFirst = true }

    mutating func next(driver: UInt32) -> UInt64 {
        if awaitingFirst {
            offset = lastDelivered.map { Int64($0) + 1 - Int64(driver) } ?? 0
            awaitingFirst = false
        }
        let sequence = UInt64(max(0, Int64(driver) + offset))
        lastDelivered = sequence
        return sequence
    }
}
