import Foundation
import XCTest

/// Boots Debian's kernel with vivid under qemu (Tests/VividVM/run.sh) and runs `VividGuestTests`
/// from this very test bundle inside it: real V4L2 capture, without a camera on the host; and
/// `MTLSegDaemonTests.VividFaultGuestTests`, the daemon through 20 camera disconnects and module reloads, and
/// `MTLSegDaemonTests.VividTwoCameraGuestTests`, two cameras with a daemon process each, one unplugged at a time.
/// Needs root and qemu-system-x86, busybox-static, kmod, cpio (.ci/setup installs them); skipped
/// otherwise, or when MTLSEG_SKIP_VM=1. About 10 s warm plus the fault cycles, 20 s more with the kernel download.
final class VividVMTests: XCTestCase {
    func testCaptureFromVividInsideAVM() throws {
        let environment = ProcessInfo.processInfo.environment
        try XCTSkipIf(environment["MTLSEG_VIVID_GUEST"] == "1", "already inside the VM")
        try XCTSkipIf(environment["MTLSEG_SKIP_VM"] == "1", "MTLSEG_SKIP_VM=1")
        try XCTSkipUnless(getuid() == 0, "needs root (apt-get download, a VM)")
        for tool in ["/usr/bin/qemu-system-x86_64", "/bin/busybox", "/sbin/depmod", "/usr/bin/cpio"] {
            try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing: run .ci/setup")
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = packageRoot.appendingPathComponent("Tests/VividVM/run.sh").path
        let bundle = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        // The bundle holds every test target; the daemon's camera-fault test needs its model in the guest.
        process.arguments = [script, bundle,
                             "MTLSegCaptureTests.VividGuestTests,MTLSegDaemonTests.VividFaultGuestTests,MTLSegDaemonTests.VividTwoCameraGuestTests"]
        // The two-camera test starts mtlsegd processes: the one this build made, beside the bundle.
        let daemon = URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("mtlsegd").path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: daemon), "build mtlsegd first (swift build --product mtlsegd)")
        process.environment = environment.merging(
            ["MTLSEG_VIVID_FILES": packageRoot.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path,
             "MTLSEG_VIVID_BINARIES": daemon,
             // Four tests in one VM: on a loaded 2-core host the fault cycles alone took 140 s.
             "MTLSEG_VIVID_TIMEOUT": environment["MTLSEG_VIVID_TIMEOUT"] ?? "480"]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        print(text)
        print(String(format: "vivid VM: %.1f s", seconds))
        XCTAssertEqual(process.terminationStatus, 0, "VM run failed; its console is printed above")
        XCTAssertTrue(text.contains("Executed 4 tests, with 0 failures"), "the guest did not run all four vivid tests")
        XCTAssertFalse(text.contains("skipped"), "a vivid test skipped inside the VM")
    }
}
