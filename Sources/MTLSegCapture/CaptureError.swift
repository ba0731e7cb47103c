#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Why a capture source could not open or keep streaming. Every case names the device (or folder),
/// and system-call failures name the call and carry errno's text; `description` prints as is.
public enum CaptureError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system or V4L2 call failed: `call` is e.g. "open" or "VIDIOC_S_FMT".
    case systemCall(device: String, call: String, errno: Int32)
    /// The node opened but cannot be used as a camera (no capture or no streaming, multi-planar only, ...).
    case unsupportedDevice(device: String, reason: String)
    /// The device delivered nothing for `seconds`.
    case timeout(device: String, seconds: Double)
    /// libv4lconvert could not produce RGB24 from the device's format.
    case conversion(device: String, reason: String)
    /// An image folder without any PNG or JPEG, or a folder that cannot be listed.
    case noImages(folder: String, reason: String)

    /// The errno of a failed call, if that is what happened.
    public var errno: Int32? {
        if case let .systemCall(_, _, code) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case let .systemCall(device, call, code):
            return "\(device): \(call) failed: \(String(cString: strerror(code))) (errno \(code))"
        case let .unsupportedDevice(device, reason):
            return "\(device): not usable as a camera: \(reason)"
        case let .timeout(device, seconds):
            return String(cFormat: "%@: no frame for %.1f s", device, seconds)
        case let .conversion(device, reason):
            return "\(device): cannot convert to RGB24: \(reason)"
        case let .noImages(folder, reason):
            return "\(folder): \(reason)"
        }
    }
}
