import CV4L2
import Foundation
import XCTest

/// What the tests that run inside the vivid VM do to the guest: busybox applets (rmmod, modprobe), and
/// vivid's "Disconnect" control, which makes a camera vanish under its open stream as an unplug does.
enum VividGuest {
    /// Presses vivid's "Disconnect" button control (found by name) through a second fd: vivid then
    /// marks its nodes unregistered, and the streaming fd sees ENODEV.
    static func pressDisconnect(_ device: String) throws {
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var query = v4l2_queryctrl()
        query.id = UInt32(V4L2_CTRL_FLAG_NEXT_CTRL)
        while withUnsafeMutableBytes(of: &query, { CV4L2_ioctl(fd, CV4L2_VIDIOC_QUERYCTRL, $0.baseAddress!) }) == 0 {
            let name = withUnsafeBytes(of: query.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "Disconnect" && query.type == V4L2_CTRL_TYPE_BUTTON.rawValue {
                var control = v4l2_control(id: query.id, value: 1)
                let rc = withUnsafeMutableBytes(of: &control) { CV4L2_ioctl(fd, CV4L2_VIDIOC_S_CTRL, $0.baseAddress!) }
                XCTAssertEqual(rc, 0, "VIDIOC_S_CTRL Disconnect: errno \(errno)")
                return
            }
            query.id |= UInt32(V4L2_CTRL_FLAG_NEXT_CTRL)
        }
        XCTFail("vivid has no \"Disconnect\" control")
    }

    /// Runs a busybox applet, its output going to the console; its exit status. (posix_spawn, not
    /// Foundation's Process: that needs a CFRunLoop wake-up socket, which it fails to make in the guest.)
    @discardableResult
    static func run(_ arguments: String...) -> Int32 {
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, arguments[0], nil, nil, argv, environ)
        guard spawned == 0 else {
            print("posix_spawn \(arguments[0]): \(String(cString: strerror(spawned)))")
            return -1
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
