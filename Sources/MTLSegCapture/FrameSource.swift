#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// One captured picture, as RGB8, with when and where in the stream it was taken.
public struct Frame: Sendable {
    public var width: Int
    public var height: Int
    /// Interleaved RGB, row-major, `width * 3` bytes a row.
    public var pixels: [UInt8]
    /// The source's own sequence number (a camera's driver sequence); gaps mean frames the source lost.
    public var sequence: UInt64
    /// Capture time on CLOCK_MONOTONIC (a camera's driver timestamp), in nanoseconds.
    public var monotonicNanoseconds: UInt64
    /// Capture time on the wall clock (CLOCK_REALTIME), in nanoseconds since 1970.
    public var realtimeNanoseconds: UInt64

    public init(width: Int, height: Int, pixels: [UInt8], sequence: UInt64, monotonicNanoseconds: UInt64, realtimeNanoseconds: UInt64) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.sequence = sequence
        self.monotonicNanoseconds = monotonicNanoseconds
        self.realtimeNanoseconds = realtimeNanoseconds
    }
}

/// Where a source stands, for logs, status and the watchdog.
public enum SourceState: Equatable, Sendable, CustomStringConvertible {
    case starting
    case streaming
    /// A folder source none of whose images can be read. (A camera that delivers nothing for its timeout is
    /// reopened: `reconnecting`.)
    case stalled(reason: String)
    /// Lost (unplugged, I/O error, timeout); trying again after `retryInSeconds`.
    case reconnecting(reason: String, retryInSeconds: Double)
    case stopped

    /// The state without its reason or retry time: "starting", "streaming", "stalled", "reconnecting" or "stopped".
    public var kind: String {
        switch self {
        case .starting: return "starting"
        case .streaming: return "streaming"
        case .stalled: return "stalled"
        case .reconnecting: return "reconnecting"
        case .stopped: return "stopped"
        }
    }

    /// The source is opening its camera or waiting to reopen it (`starting`, `reconnecting`): no frame is expected yet.
    public var isWaitingForDevice: Bool {
        switch self {
        case .starting, .reconnecting: return true
        case .streaming, .stalled, .stopped: return false
        }
    }

    public var description: String {
        switch self {
        case .starting, .streaming, .stopped: return kind
        case let .stalled(reason): return "\(kind) (\(reason))"
        case let .reconnecting(reason, retry): return kind + String(cFormat: " in %.1f s (%@)", retry, reason)
        }
    }
}

/// Counts that only grow, read at any time from any thread.
public struct SourceCounters: Equatable, Sendable {
    /// Frames handed on.
    public var captured: UInt64 = 0
    /// Frames the driver lost: gaps in its sequence numbers.
    public var droppedByDriver: UInt64 = 0
    /// Times the source was torn down and opened again.
    public var reopened: UInt64 = 0
    /// Times a camera source set about opening its device, successful or not: while it waits for a camera, its
    /// heartbeat (one that stops advancing is stuck in a call into the driver).
    public var openAttempts: UInt64 = 0

    public init() {}
}

/// A producer of frames: a V4L2 camera, a folder of images, a synthetic field.
/// `start` returns at once; frames arrive on a thread of the source's own, the
/// newest always handed on (a consumer that is busy simply misses frames).
public protocol FrameSource: AnyObject {
    /// What the source is, for logs ("/dev/video0 YUYV 640x480 @30", "synthetic 640x480 @15").
    var name: String { get }
    var counters: SourceCounters { get }
    var state: SourceState { get }
    func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void)
    /// Stops and joins the source's thread; no frame is delivered after it returns.
    func stop()
}
