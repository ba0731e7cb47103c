import Foundation
import XCTest
import MTLSegTestSupport

/// The Debian package as a user gets it: built by systemd/build-deb.sh, installed with apt in a Debian 12 VM
/// with systemd as PID 1 (Tests/SystemdVM/run.sh), and checked there with systemctl, journalctl and the
/// Python client (Tests/SystemdVM/guest-checks.sh). Needs root, qemu-system-x86, debootstrap and e2fsprogs
/// (.ci/setup installs them); skipped otherwise, or when MTLSEG_SKIP_VM=1. The first run makes the VM's
/// root file system with debootstrap (a few minutes, network needed) and keeps it.
final class SystemdVMTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every check guest-checks.sh reports; one that did not run fails the test as surely as one that failed.
    static let checks = [
        "install", "security", "verify", "started", "upgrade", "models-root-owned", "process-name", "status-line",
        "group-member-reads", "packaged-example", "outsider-refused", "root-reads", "socket-owner",
        "camera-after-restart", "reload-keeps-clients", "reload-broken-model",
        "watchdog-sigstop", "sigsegv-restart", "camera-missing-waits", "start-limit", "stop-clean",
        "template-unit", "instance-check-config", "instances-serve", "status-lists-all", "instances-stop-apart", "apt-remove", "apt-purge",
    ]

    func testThePackageServesUnderSystemdInAVM() throws {
        let environment = ProcessInfo.processInfo.environment
        try XCTSkipIf(environment["MTLSEG_VIVID_GUEST"] == "1", "inside the vivid VM")
        try XCTSkipIf(environment["MTLSEG_SKIP_VM"] == "1", "MTLSEG_SKIP_VM=1")
        try XCTSkipUnless(getuid() == 0, "needs root (debootstrap, a VM)")
        for tool in ["/usr/bin/qemu-system-x86_64", "/usr/sbin/debootstrap", "/usr/sbin/mkfs.ext4"] {
            try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing: run .ci/setup")
        }
        let build = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("systemd/build-deb.sh").path, "0.1.0"])
        XCTAssertEqual(build.status, 0, build.output)
        let deb = try XCTUnwrap(build.output.split(separator: "\n").last.map(String.init))

        let started = Date()
        let run = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("Tests/SystemdVM/run.sh").path, deb])
        print(run.output)
        print(String(format: "systemd VM: %.0f s", Date().timeIntervalSince(started)))

        var results: [String: String] = [:]  // check name → "" when passed, else why it failed
        // The serial console ends lines with "\r\n", one Character in Swift: split on any newline.
        for line in run.output.split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ", maxSplits: 3)
            guard words.count >= 3, words[0] == "CHECK" else { continue }
            let name = String(words[2].split(separator: ":")[0])
            results[name] = words[1] == "PASS" ? "" : String(line)
        }
        for check in Self.checks {
            guard let result = results[check] else {
                XCTFail("\(check): did not run (the VM's console is printed above)")
                continue
            }
            XCTAssertEqual(result, "", check)
        }
        XCTAssertEqual(run.status, 0, "the VM run failed; its console is printed above")
    }
}
