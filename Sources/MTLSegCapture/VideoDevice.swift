import CV4L2
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// What `VideoDevice.poll` saw.
public enum PollOutcome: Equatable, Sendable {
    /// Readable, or an error condition the next ioctl will name (a vanished device reports POLLERR).
    case ready
    case timedOut
    case failed(errno: Int32)
}

/// The system calls a camera is driven through: one open V4L2 node at a time. `LibV4L2Device` is
/// the real one (libv4l2 + libv4lconvert); tests substitute a scripted fake, so the capture state
/// machine (negotiation, buffers, EAGAIN, loss and reopen) runs without a camera.
public protocol VideoDevice: AnyObject {
    /// Opens `path` non-blocking. Throws `CaptureError.systemCall(call: "open")`.
    func open(path: String) throws
    /// Closes the node (and anything tied to it); safe to call when not open.
    func close()
    /// One ioctl on the open node: 0 on success, else the errno (EINTR already retried).
    func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer) -> Int32
    /// Maps a driver buffer (the offset QUERYBUF gave); nil with `errno` set on failure.
    func map(length: Int, offset: Int) -> UnsafeMutableRawPointer?
    func unmap(_ address: UnsafeMutableRawPointer, length: Int)
    /// Waits up to `milliseconds` for a buffer to be ready.
    func poll(milliseconds: Int32) -> PollOutcome
    /// The native format the device should capture in to deliver RGB24 at `request`'s size
    /// (libv4lconvert's choice), or nil if it cannot tell.
    func nativeFormat(forRGB24 request: v4l2_pix_format) -> v4l2_pix_format?
    /// Converts one native frame to RGB24 (`width * height * 3` bytes into `rgb`). Throws a reason.
    func convertToRGB24(source: v4l2_pix_format, bytes: UnsafeRawBufferPointer, width: Int, height: Int,
                        into rgb: inout [UInt8]) throws
}

extension VideoDevice {
    /// Runs an ioctl on a typed argument, turning a failure into an error that names the device and the call.
    func call<Argument>(_ request: UInt, _ name: String, _ argument: inout Argument, device path: String) throws {
        let code = withUnsafeMutableBytes(of: &argument) { ioctl(request, $0.baseAddress!) }
        if code != 0 { throw CaptureError.systemCall(device: path, call: name, errno: code) }
    }

    /// Like `call`, returning the errno instead of throwing (for enumerations that end with EINVAL).
    func attempt<Argument>(_ request: UInt, _ argument: inout Argument) -> Int32 {
        withUnsafeMutableBytes(of: &argument) { ioctl(request, $0.baseAddress!) }
    }
}
