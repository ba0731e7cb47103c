#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// What a camera path can be before it is opened. A path that does not exist yet is a camera not plugged in
/// (waited for); one that exists but is no video4linux character device can never become a camera, and retrying
/// it would only hide the mistake.
public enum CameraPath {
    /// The major number of every V4L2 node (/dev/video*, v4l2loopback included).
    static let videoMajor: UInt64 = 81

    /// Why `path` can never be a camera (a plain file, a folder, another kind of device such as /dev/null, a path
    /// outside /dev to nothing); nil when it may be one: a V4L2 node, or nothing there yet under /dev.
    public static func problem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            // udev makes camera nodes and their links under /dev only: anything else that is missing (a typo, a
            // relative name, an image folder not made yet) would be waited for in vain.
            return path.hasPrefix("/dev/") ? nil : "nothing is there, and cameras appear under /dev (such as /dev/video0 or /dev/v4l/by-id/…)"
        }
        switch info.st_mode & S_IFMT {
        case S_IFCHR:
            return majorNumber(info.st_rdev) == videoMajor ? nil : "a device, but not a video4linux one (such as /dev/video0)"
        case S_IFDIR:
            return "a folder"
        default:
            return "a file, not a V4L2 device (such as /dev/video0)"
        }
    }

    /// The major number of a device number, as glibc's major() (a macro, which Swift does not import).
    static func majorNumber(_ device: dev_t) -> UInt64 {
        let value = UInt64(device)
        return ((value >> 8) & 0xFFF) | ((value >> 32) & ~UInt64(0xFFF))
    }
}
