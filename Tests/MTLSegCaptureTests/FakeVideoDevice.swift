import CV4L2
import Foundation
import MTLSegEssentials
@testable import MTLSegCapture

/// A scripted V4L2 device: it offers formats, sizes and rates, and DQBUF plays `events` in order.
/// It records what the camera asked for, so tests can check negotiation and teardown.
final class FakeVideoDevice: VideoDevice {
    enum Event {
        /// A filled buffer with this driver sequence number.
        case frame(UInt32)
        /// Nothing ready: DQBUF answers EAGAIN once (ends a drain).
        case pause
        /// DQBUF fails with this errno (the device is lost, etc.).
        case failure(Int32)
    }

    struct Offer {
        var fourcc: FourCC
        var sizes: [(width: Int, height: Int)]
        var intervals: [FrameInterval]
    }

    private let lock = NSLock()
    var offers: [Offer]
    var capabilities = UInt32(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING)
    private var events: [Event] = []
    private var openErrors: [Int32] = []

    // What happened, for assertions.
    private(set) var opens = 0
    private(set) var closes = 0
    private(set) var streamOns = 0
    private(set) var streamOffs = 0
    private(set) var mapped = 0
    private(set) var unmapped = 0
    private(set) var setFormat: v4l2_pix_format?
    private(set) var setInterval: FrameInterval?

    private var isOpen = false
    private var format = v4l2_pix_format()
    private var interval = FrameInterval(numerator: 1, denominator: 30)
    private var buffers: [UnsafeMutableRawPointer] = []
    private var bufferLength = 0
    private var queued: [Int] = []

    init(offers: [Offer]) { self.offers = offers }

    func script(_ more: [Event]) { locked { events.append(contentsOf: more) } }
    func failOpens(_ codes: [Int32]) { locked { openErrors.append(contentsOf: codes) } }
    var pendingEvents: Int { locked { events.count } }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: - VideoDevice

    func open(path: String) throws {
        try locked {
            opens += 1
            if !openErrors.isEmpty { throw CaptureError.systemCall(device: path, call: "open", errno: openErrors.removeFirst()) }
            isOpen = true
        }
    }

    func close() {
        locked {
            if isOpen { closes += 1 }
            isOpen = false
            queued = []
        }
    }

    func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer) -> Int32 {
        locked { handle(request, argument) }
    }

    func map(length: Int, offset: Int) -> UnsafeMutableRawPointer? {
        locked {
            mapped += 1
            return buffers[offset / max(bufferLength, 1)]
        }
    }

    func unmap(_ address: UnsafeMutableRawPointer, length: Int) { locked { unmapped += 1 } }

    func poll(milliseconds: Int32) -> PollOutcome {
        if locked({ !events.isEmpty }) { return .ready }
        usleep(UInt32(min(milliseconds, 5)) * 1000)
        return .timedOut
    }

    func nativeFormat(forRGB24 request: v4l2_pix_format) -> v4l2_pix_format? {
        var result = request
        result.pixelformat = (offers.first { $0.fourcc == .rgb24 } ?? offers[0]).fourcc.rawValue
        return result
    }

    /// "Converts" by filling every RGB byte with the buffer's first byte (the frame's sequence number).
    func convertToRGB24(source: v4l2_pix_format, bytes: UnsafeRawBufferPointer, width: Int, height: Int, into rgb: inout [UInt8]) throws {
        rgb = [UInt8](repeating: bytes.first ?? 0, count: width * height * 3)
    }

    // MARK: - ioctls

    private func handle(_ request: UInt, _ argument: UnsafeMutableRawPointer) -> Int32 {
        guard isOpen else { return EBADF }
        switch request {
        case CV4L2_VIDIOC_QUERYCAP:
            let cap = argument.assumingMemoryBound(to: v4l2_capability.self)
            cap.pointee = v4l2_capability()
            withUnsafeMutableBytes(of: &cap.pointee.driver) { $0.copyBytes(from: Array("fake".utf8)) }
            cap.pointee.capabilities = capabilities | UInt32(V4L2_CAP_DEVICE_CAPS)
            cap.pointee.device_caps = capabilities
            return 0
        case CV4L2_VIDIOC_ENUM_FMT:
            let entry = argument.assumingMemoryBound(to: v4l2_fmtdesc.self)
            guard Int(entry.pointee.index) < offers.count else { return EINVAL }
            entry.pointee.pixelformat = offers[Int(entry.pointee.index)].fourcc.rawValue
            return 0
        case CV4L2_VIDIOC_ENUM_FRAMESIZES:
            let entry = argument.assumingMemoryBound(to: v4l2_frmsizeenum.self)
            guard let offer = offers.first(where: { $0.fourcc.rawValue == entry.pointee.pixel_format }),
                  Int(entry.pointee.index) < offer.sizes.count else { return EINVAL }
            let size = offer.sizes[Int(entry.pointee.index)]
            entry.pointee.type = V4L2_FRMSIZE_TYPE_DISCRETE.rawValue
            entry.pointee.discrete = v4l2_frmsize_discrete(width: UInt32(size.width), height: UInt32(size.height))
            return 0
        case CV4L2_VIDIOC_ENUM_FRAMEINTERVALS:
            let entry = argument.assumingMemoryBound(to: v4l2_frmivalenum.self)
            guard let offer = offers.first(where: { $0.fourcc.rawValue == entry.pointee.pixel_format }),
                  Int(entry.pointee.index) < offer.intervals.count else { return EINVAL }
            let i = offer.intervals[Int(entry.pointee.index)]
            entry.pointee.type = V4L2_FRMIVAL_TYPE_DISCRETE.rawValue
            entry.pointee.discrete = v4l2_fract(numerator: i.numerator, denominator: i.denominator)
            return 0
        case CV4L2_VIDIOC_S_FMT:
            let f = argument.assumingMemoryBound(to: v4l2_format.self)
            guard let offer = offers.first(where: { $0.fourcc.rawValue == f.pointee.fmt.pix.pixelformat }) else { return EINVAL }
            // Like a driver: snap to the nearest offered size.
            let want = (Int(f.pointee.fmt.pix.width), Int(f.pointee.fmt.pix.height))
            let size = offer.sizes.min { abs($0.width - want.0) + abs($0.height - want.1) < abs($1.width - want.0) + abs($1.height - want.1) }!
            f.pointee.fmt.pix.width = UInt32(size.width)
            f.pointee.fmt.pix.height = UInt32(size.height)
            f.pointee.fmt.pix.sizeimage = UInt32(size.width * size.height * 2)
            format = f.pointee.fmt.pix
            setFormat = format
            return 0
        case CV4L2_VIDIOC_G_PARM, CV4L2_VIDIOC_S_PARM:
            let p = argument.assumingMemoryBound(to: v4l2_streamparm.self)
            if request == CV4L2_VIDIOC_S_PARM {
                let t = p.pointee.parm.capture.timeperframe
                interval = FrameInterval(numerator: t.numerator, denominator: t.denominator)
                setInterval = interval
            }
            p.pointee.parm.capture.capability = UInt32(V4L2_CAP_TIMEPERFRAME)
            p.pointee.parm.capture.timeperframe = v4l2_fract(numerator: interval.numerator, denominator: interval.denominator)
            return 0
        case CV4L2_VIDIOC_REQBUFS:
            let r = argument.assumingMemoryBound(to: v4l2_requestbuffers.self)
            bufferLength = Int(format.sizeimage)
            buffers = (0 ..< Int(r.pointee.count)).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bufferLength, alignment: 64) }
            return 0
        case CV4L2_VIDIOC_QUERYBUF:
            let b = argument.assumingMemoryBound(to: v4l2_buffer.self)
            b.pointee.length = UInt32(bufferLength)
            b.pointee.m.offset = b.pointee.index * UInt32(bufferLength)
            return 0
        case CV4L2_VIDIOC_QBUF:
            // Like vb2, write the queued buffer's state back: its sequence and timestamp are gone.
            let b = argument.assumingMemoryBound(to: v4l2_buffer.self)
            queued.append(Int(b.pointee.index))
            b.pointee.sequence = 0
            b.pointee.timestamp = timeval()
            b.pointee.flags = UInt32(V4L2_BUF_FLAG_QUEUED)
            return 0
        case CV4L2_VIDIOC_STREAMON:
            streamOns += 1
            return 0
        case CV4L2_VIDIOC_STREAMOFF:
            streamOffs += 1
            return 0
        case CV4L2_VIDIOC_DQBUF:
            guard !events.isEmpty else { return EAGAIN }
            switch events.removeFirst() {
            case .pause:
                return EAGAIN
            case let .failure(code):
                return code
            case let .frame(sequence):
                guard !queued.isEmpty else { return EAGAIN }
                let index = queued.removeFirst()
                buffers[index].storeBytes(of: UInt8(truncatingIfNeeded: sequence), as: UInt8.self)
                let b = argument.assumingMemoryBound(to: v4l2_buffer.self)
                b.pointee.index = UInt32(index)
                b.pointee.sequence = sequence
                b.pointee.bytesused = UInt32(bufferLength)
                b.pointee.flags = UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
                let now = Clock.monotonicNanoseconds()
                b.pointee.timestamp = timeval(tv_sec: Int(now / 1_000_000_000), tv_usec: Int(now % 1_000_000_000 / 1000))
                return 0
            }
        default:
            return ENOTTY
        }
    }
}
