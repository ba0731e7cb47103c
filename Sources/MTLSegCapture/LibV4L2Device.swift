import CV4L2
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// A real V4L2 node, through libv4l2 (so that its plugins apply) and libv4lconvert (format
/// conversion). The camera only ever sets native formats, so libv4l2 passes buffers through
/// untouched and the conversion to RGB24 happens in `convertToRGB24`, on a copy.
public final class LibV4L2Device: VideoDevice {
    private var fd: Int32 = -1
    private var converter: OpaquePointer?
    private var path = ""

    public init() {}

    deinit { close() }

    public func open(path: String) throws {
        close()
        self.path = path
        let descriptor = CV4L2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if descriptor < 0 { throw CaptureError.systemCall(device: path, call: "open", errno: errno) }
        fd = descriptor
    }

    public func close() {
        if let converter { CV4L2_convert_destroy(converter) }
        converter = nil
        if fd >= 0 { _ = CV4L2_close(fd) }
        fd = -1
    }

    public func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer) -> Int32 {
        while true {
            if CV4L2_ioctl(fd, request, argument) == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    public func map(length: Int, offset: Int) -> UnsafeMutableRawPointer? {
        let address = CV4L2_mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, Int64(offset))
        return address == MAP_FAILED ? nil : address
    }

    public func unmap(_ address: UnsafeMutableRawPointer, length: Int) {
        _ = CV4L2_munmap(address, length)
    }

    public func poll(milliseconds: Int32) -> PollOutcome {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let count = Glibc.poll(&entry, 1, milliseconds)
        if count < 0 { return errno == EINTR ? .timedOut : .failed(errno: errno) }
        return count == 0 ? .timedOut : .ready
    }

    public func nativeFormat(forRGB24 request: v4l2_pix_format) -> v4l2_pix_format? {
        guard let converter = try? makeConverter() else { return nil }
        var dest = v4l2_format()
        dest.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        dest.fmt.pix = request
        dest.fmt.pix.pixelformat = FourCC.rgb24.rawValue
        var source = v4l2_format()
        guard CV4L2_convert_try_format(converter, &dest, &source) == 0 else { return nil }
        return source.fmt.pix
    }

    public func convertToRGB24(source: v4l2_pix_format, bytes: UnsafeRawBufferPointer, width: Int, height: Int,
                               into rgb: inout [UInt8]) throws {
        let converter = try makeConverter()
        var sourceFormat = v4l2_format()
        sourceFormat.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        sourceFormat.fmt.pix = source
        var destFormat = sourceFormat
        destFormat.fmt.pix.pixelformat = FourCC.rgb24.rawValue
        destFormat.fmt.pix.bytesperline = UInt32(width * 3)
        destFormat.fmt.pix.sizeimage = UInt32(width * height * 3)
        rgb = [UInt8](repeating: 0, count: width * height * 3)
        let capacity = rgb.count
        let written = rgb.withUnsafeMutableBufferPointer { out in
            CV4L2_convert(converter, &sourceFormat, &destFormat,
                          UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                          Int32(bytes.count), out.baseAddress, Int32(capacity))
        }
        if written < 0 { throw CaptureError.conversion(device: path, reason: String(cString: CV4L2_convert_error(converter))) }
    }

    /// libv4lconvert's state (it learns the device's formats from the fd), made on first use.
    private func makeConverter() throws -> OpaquePointer {
        if let converter { return converter }
        guard let made = CV4L2_convert_create(fd) else {
            throw CaptureError.conversion(device: path, reason: "libv4lconvert unavailable (v4lconvert_create failed)")
        }
        converter = made
        return made
    }
}
