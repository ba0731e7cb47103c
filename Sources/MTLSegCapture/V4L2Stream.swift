import CV4L2
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// What a camera is asked for; the device's nearest supported values are used.
public struct CameraRequest: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var framesPerSecond: Double
    /// The native format to capture in; nil lets libv4lconvert pick the best one for RGB24.
    public var nativeFormat: FourCC?
    /// mmap buffers to ask the driver for (at least 3: one being filled, one ready, one being copied).
    public var bufferCount: Int

    public init(width: Int = 640, height: Int = 480, framesPerSecond: Double = 30, nativeFormat: FourCC? = nil, bufferCount: Int = 4) {
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.nativeFormat = nativeFormat
        self.bufferCount = max(3, bufferCount)
    }
}

/// The newest frame of one drain of the driver's queue, copied out of its buffer.
struct DequeuedFrame {
    var bytes: [UInt8]
    var sequence: UInt32
    /// CLOCK_MONOTONIC nanoseconds when the driver stamps buffers on that clock, else nil.
    var monotonicNanoseconds: UInt64?
    /// Frames the driver lost before this one (gaps in its sequence numbers), this drain.
    var droppedByDriver: UInt64
}

/// One open, streaming V4L2 capture: QUERYCAP, format/rate negotiation, mmap buffers, STREAMON;
/// then `dequeueNewest` until `close`. A failure anywhere throws, naming the device and the call;
/// the camera then closes this stream and opens a new one.
final class V4L2Stream {
    let path: String
    private let device: VideoDevice
    /// The negotiated native format (size, fourcc, bytesperline).
    private(set) var format = v4l2_pix_format()
    private(set) var framesPerSecond: Double?
    private(set) var driver = ""
    private(set) var card = ""
    private var buffers: [(address: UnsafeMutableRawPointer, length: Int)] = []
    private var streaming = false
    private var lastSequence: UInt32?

    init(path: String, device: VideoDevice) {
        self.path = path
        self.device = device
    }

    deinit { close() }

    func open(_ request: CameraRequest) throws {
        try device.open(path: path)
        do {
            try checkCapabilities()
            try negotiateFormat(request)
            try negotiateRate(request.framesPerSecond)
            try mapBuffers(count: request.bufferCount)
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            try device.call(CV4L2_VIDIOC_STREAMON, "VIDIOC_STREAMON", &type, device: path)
            streaming = true
        } catch {
            close()
            throw error
        }
    }

    /// Dequeues every ready buffer, re-queues all but the newest at once, copies the newest out and
    /// re-queues it too. nil when none was ready (EAGAIN). Between dequeues it asks poll rather than
    /// ending on EAGAIN, because libv4l2 prints "error dequeuing buf" for every EAGAIN.
    func dequeueNewest() throws -> DequeuedFrame? {
        var newest: v4l2_buffer?
        var dropped: UInt64 = 0
        while newest == nil || device.poll(milliseconds: 0) == .ready {
            var buffer = v4l2_buffer()
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            let code = device.attempt(CV4L2_VIDIOC_DQBUF, &buffer)
            if code == EAGAIN { break }
            if code != 0 { throw CaptureError.systemCall(device: path, call: "VIDIOC_DQBUF", errno: code) }
            if let last = lastSequence, buffer.sequence > last &+ 1 { dropped += UInt64(buffer.sequence - last - 1) }
            lastSequence = buffer.sequence
            if var older = newest { try device.call(CV4L2_VIDIOC_QBUF, "VIDIOC_QBUF", &older, device: path) }
            newest = buffer
        }
        guard var buffer = newest else { return nil }
        let index = Int(buffer.index)
        guard index < buffers.count else {
            throw CaptureError.unsupportedDevice(device: path, reason: "VIDIOC_DQBUF returned unknown buffer \(index)")
        }
        let used = min(Int(buffer.bytesused > 0 ? buffer.bytesused : UInt32(buffers[index].length)), buffers[index].length)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: buffers[index].address, count: used))
        // Read before QBUF: the driver writes the re-queued buffer's state (sequence 0, no timestamp) back.
        let monotonic = buffer.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
        let stamp = UInt64(buffer.timestamp.tv_sec) * 1_000_000_000 + UInt64(buffer.timestamp.tv_usec) * 1000
        let frame = DequeuedFrame(bytes: bytes, sequence: buffer.sequence,
                                  monotonicNanoseconds: monotonic && stamp > 0 ? stamp : nil, droppedByDriver: dropped)
        try device.call(CV4L2_VIDIOC_QBUF, "VIDIOC_QBUF", &buffer, device: path)
        return frame
    }

    func poll(milliseconds: Int32) -> PollOutcome { device.poll(milliseconds: milliseconds) }

    func convertToRGB24(_ bytes: [UInt8], into rgb: inout [UInt8]) throws {
        try bytes.withUnsafeBytes {
            try device.convertToRGB24(source: format, bytes: $0, width: Int(format.width), height: Int(format.height), into: &rgb)
        }
    }

    /// STREAMOFF, munmap, close; errors are ignored (the device may be gone).
    func close() {
        if streaming {
            var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
            _ = device.attempt(CV4L2_VIDIOC_STREAMOFF, &type)
            streaming = false
        }
        for buffer in buffers { device.unmap(buffer.address, length: buffer.length) }
        buffers = []
        device.close()
    }

    // MARK: - Opening

    private func checkCapabilities() throws {
        var capability = v4l2_capability()
        try device.call(CV4L2_VIDIOC_QUERYCAP, "VIDIOC_QUERYCAP", &capability, device: path)
        driver = cString(capability.driver)
        card = cString(capability.card)
        let caps = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
        if caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) == 0 {
            let reason = caps & UInt32(V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0
                ? "multi-planar capture only (not supported)" : "no video capture capability (\(driver) \"\(card)\")"
            throw CaptureError.unsupportedDevice(device: path, reason: reason)
        }
        if caps & UInt32(V4L2_CAP_STREAMING) == 0 {
            throw CaptureError.unsupportedDevice(device: path, reason: "no streaming I/O (\(driver) \"\(card)\")")
        }
    }

    private func negotiateFormat(_ request: CameraRequest) throws {
        let offered = V4L2Enumeration.formats(device)
        var wanted = v4l2_pix_format()
        wanted.width = UInt32(request.width)
        wanted.height = UInt32(request.height)
        let fourcc: FourCC
        if let native = request.nativeFormat {
            guard offered.contains(where: { $0.fourcc == native }) else {
                let list = offered.map(\.fourcc.description).joined(separator: ", ")
                throw CaptureError.unsupportedDevice(device: path, reason: "no \(native) format (offers \(list))")
            }
            fourcc = native
        } else if let chosen = device.nativeFormat(forRGB24: wanted) {
            fourcc = FourCC(rawValue: chosen.pixelformat)
        } else if let first = offered.first {
            fourcc = first.fourcc
        } else {
            throw CaptureError.unsupportedDevice(device: path, reason: "no capture formats (VIDIOC_ENUM_FMT listed none)")
        }
        let size = FormatNegotiation.nearestSize(to: request.width, request.height, in: V4L2Enumeration.sizes(device, format: fourcc))
            ?? (request.width, request.height)
        var format = v4l2_format()
        format.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        format.fmt.pix.width = UInt32(size.width)
        format.fmt.pix.height = UInt32(size.height)
        format.fmt.pix.pixelformat = fourcc.rawValue
        format.fmt.pix.field = V4L2_FIELD_NONE.rawValue
        try device.call(CV4L2_VIDIOC_S_FMT, "VIDIOC_S_FMT", &format, device: path)
        if format.fmt.pix.pixelformat != fourcc.rawValue {
            throw CaptureError.unsupportedDevice(
                device: path, reason: "asked for \(fourcc), driver set \(FourCC(rawValue: format.fmt.pix.pixelformat))")
        }
        self.format = format.fmt.pix
    }

    private func negotiateRate(_ fps: Double) throws {
        var parameters = v4l2_streamparm()
        parameters.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        // Drivers without G_PARM/S_PARM run at their one rate; that is not an error.
        guard device.attempt(CV4L2_VIDIOC_G_PARM, &parameters) == 0 else { return }
        let current = parameters.parm.capture.timeperframe
        framesPerSecond = FrameInterval(numerator: current.numerator, denominator: current.denominator).framesPerSecond
        guard parameters.parm.capture.capability & UInt32(V4L2_CAP_TIMEPERFRAME) != 0 else { return }
        let offered = V4L2Enumeration.intervals(device, format: FourCC(rawValue: format.pixelformat),
                                                width: Int(format.width), height: Int(format.height))
        guard let interval = FormatNegotiation.nearestInterval(toFPS: fps, in: offered) else { return }
        parameters.parm.capture.timeperframe = v4l2_fract(numerator: interval.numerator, denominator: interval.denominator)
        try device.call(CV4L2_VIDIOC_S_PARM, "VIDIOC_S_PARM", &parameters, device: path)
        let set = parameters.parm.capture.timeperframe
        framesPerSecond = FrameInterval(numerator: set.numerator, denominator: set.denominator).framesPerSecond
    }

    private func mapBuffers(count: Int) throws {
        var request = v4l2_requestbuffers()
        request.count = UInt32(count)
        request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        request.memory = V4L2_MEMORY_MMAP.rawValue
        try device.call(CV4L2_VIDIOC_REQBUFS, "VIDIOC_REQBUFS", &request, device: path)
        guard request.count >= 2 else {
            throw CaptureError.unsupportedDevice(device: path, reason: "driver granted \(request.count) mmap buffers (need 2 or more)")
        }
        for index in 0 ..< Int(request.count) {
            var buffer = v4l2_buffer()
            buffer.index = UInt32(index)
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            try device.call(CV4L2_VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &buffer, device: path)
            guard let address = device.map(length: Int(buffer.length), offset: Int(buffer.m.offset)) else {
                throw CaptureError.systemCall(device: path, call: "mmap", errno: errno)
            }
            buffers.append((address, Int(buffer.length)))
            try device.call(CV4L2_VIDIOC_QBUF, "VIDIOC_QBUF", &buffer, device: path)
        }
    }
}
