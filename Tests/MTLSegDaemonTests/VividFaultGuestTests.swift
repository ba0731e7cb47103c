import CV4L2
import Foundation
import MTLSegEssentials
import MTLSegCapture
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

/// Camera faults against the real daemon (vivid camera → tiny model → socket server), run inside the
/// vivid VM that `MTLSegCaptureTests.VividVMTests` boots; elsewhere it skips. Twenty cycles, each:
/// 1. `rmmod vivid` while streaming: refused (the open stream holds the module), streaming goes on;
/// 2. the camera vanishes mid-stream: vivid's "Disconnect" control (odd cycles) or unbinding vivid's
///    platform device from its driver, as an unplug does (even cycles);
/// 3. the module is reloaded (`rmmod` succeeds once the daemon has let go of its fds, then `modprobe`).
/// Throughout, one client stays connected and STATS (what `mtlseg status` shows) reports the
/// camera as reconnecting, then streaming; frames reach the client again after every cycle.
/// Open fds and resident memory after cycle 1 and after cycle 20 must not grow.
final class VividFaultGuestTests: XCTestCase {
    private let cycles = 20
    private let socketPath = "/tmp/mtlsegd-vivid.sock"

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MTLSEG_VIVID_GUEST"] == "1", "runs inside the vivid VM only")
    }

    /// The model the daemon serves in the guest; `VividVMTests` copies it into the VM.
    static let modelFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path

    func testDaemonRidesOutDisconnectsAndModuleReloads() throws {
        var config = DaemonConfig()
        config.model = Self.modelFixture
        config.threads = 1
        config.source = "/dev/video0"
        config.width = 320
        config.height = 180
        config.fps = 30
        config.clientTimeout = 5
        config.socketPath = socketPath
        let daemon = try Daemon(config: config, makeSource: SourceFactory.make)
        try daemon.start()
        defer { daemon.stop() }

        let frames = FrameReader(try WireClient(path: socketPath, hello: Hello(encoding: .rle, name: "vivid faults")))
        defer { frames.stop() }
        let status = try WireClient(path: socketPath, hello: Hello(tasks: [], name: "vivid faults status"))
        func sourceState() throws -> String {
            try status.requestStats()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                guard case let .stats(bytes) = try status.next(timeout: 10) else { continue }
                let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
                let source = try XCTUnwrap(report["source"] as? [String: Any])
                return try XCTUnwrap(source["state"] as? String)
            }
            throw WireClient.Failure.timeout
        }

        let start = Clock.monotonicNanoseconds()
        _ = try XCTUnwrap(frames.waitForFrame(capturedAfter: start, seconds: 60), "no frame from vivid through the daemon")
        XCTAssertEqual(try sourceState(), "streaming")

        var recoveries: [Double] = []
        var warm: (fds: Int, rss: Int)?, settled = 0
        for cycle in 1 ... cycles {
            // 1. A plain module reload mid-stream is refused: the daemon's open fd and mappings pin vivid.
            XCTAssertNotEqual(VividGuest.run("/bin/rmmod", "vivid"), 0, "cycle \(cycle): rmmod vivid succeeded under an open stream")
            let afterRefusal = Clock.monotonicNanoseconds()
            XCTAssertNotNil(frames.waitForFrame(capturedAfter: afterRefusal, seconds: 10), "cycle \(cycle): streaming stopped after a refused rmmod")

            // 2. The camera vanishes mid-stream.
            let byControl = cycle % 2 == 1
            let faultAt = Clock.monotonicNanoseconds()
            if byControl { try VividGuest.pressDisconnect("/dev/video0") } else { try unbindVivid() }
            var states: [String] = []
            func noteState() throws {
                let state = try sourceState()
                if states.last != state { states.append(state) }
            }
            // 3. Reload the module: rmmod succeeds only once the daemon has closed the device.
            var unloaded = false
            let unloadDeadline = Date().addingTimeInterval(10)
            while !unloaded && Date() < unloadDeadline {
                try noteState()
                unloaded = VividGuest.run("/bin/rmmod", "vivid") == 0
                if !unloaded { Thread.sleep(forTimeInterval: 0.05) }
            }
            XCTAssertTrue(unloaded, "cycle \(cycle): the daemon did not let go of vivid in 10 s (states \(states))")
            XCTAssertEqual(VividGuest.run("/bin/modprobe", "vivid", "n_devs=1"), 0, "cycle \(cycle): modprobe vivid failed")
            let reloadedAt = Clock.monotonicNanoseconds()

            // Streaming resumes on its own; STATS shows the way back.
            var recovered: UInt64?
            let recoverDeadline = Date().addingTimeInterval(20)
            while recovered == nil && Date() < recoverDeadline {
                try noteState()
                // Captured after the reload: only the new device can have made it (the old stream may still
                // hand over frames it finished while the unbind was under way).
                recovered = frames.waitForFrame(capturedAfter: reloadedAt, seconds: 0.1)
            }
            try noteState()
            guard let recoveredAt = recovered else {
                XCTFail("cycle \(cycle): no frame within 20 s of reloading vivid (states \(states))")
                break
            }
            let seconds = Double(recoveredAt - faultAt) / 1e9
            recoveries.append(seconds)
            XCTAssertTrue(states.contains { $0.hasPrefix("reconnecting") }, "cycle \(cycle): STATS never showed reconnecting: \(states)")
            XCTAssertEqual(states.last, "streaming", "cycle \(cycle): \(states)")

            // Let the new stream settle before measuring.
            XCTAssertNotNil(frames.waitForFrame(capturedAfter: Clock.monotonicNanoseconds() + 300_000_000, seconds: 10))
            let fds = openDescriptors, rss = residentKilobytes
            if cycle == 1 { warm = (fds, rss) }
            if cycle == 5 { settled = rss }
            print(String(format: "vivid faults: cycle %2d (%@): reload %.2f s, frames again %.2f s after the fault; fds %d, RSS %d kB; states %@",
                         cycle, byControl ? "Disconnect control" : "unbind", Double(reloadedAt - faultAt) / 1e9, seconds, fds, rss,
                         states.joined(separator: " → ")))
        }

        let sequences = frames.sequences
        XCTAssertTrue(zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 }, "frame sequences go backwards across reopens")
        XCTAssertFalse(frames.failed, "the client lost its connection: \(frames.failure)")
        guard let warm, recoveries.count == cycles else { return }
        let fds = openDescriptors, rss = residentKilobytes
        let sorted = recoveries.sorted()
        print(String(format: "vivid faults: %d cycles, rmmod mid-stream refused each time; fds %d → %d; RSS %d → %d kB (%+d kB; %+d kB since cycle 5); "
                     + "frames again after a fault: median %.2f s, max %.2f s; %d frames to the client, daemon published %d",
                     cycles, warm.fds, fds, warm.rss, rss, rss - warm.rss, rss - settled, sorted[sorted.count / 2], sorted.last!,
                     sequences.count, Int(daemon.counters.published)))
        XCTAssertLessThanOrEqual(fds, warm.fds, "file descriptors grew over \(cycles - 1) camera faults")
        // Measured: +376 kB, all of it in cycles 2 and 3 (the allocator warming up to the unbind path), then
        // flat to 4 kB. A leak of one 320x180 RGB frame (169 kB) a cycle would add 3.2 MB over 19 cycles, and
        // from cycle 5 on, anything of 32 kB or more a cycle shows.
        XCTAssertLessThanOrEqual(rss - warm.rss, 2048, "resident memory grew over \(cycles - 1) camera faults")
        XCTAssertLessThanOrEqual(rss - settled, 512, "resident memory grew from cycle 5 to \(cycles)")
    }

    // MARK: - Faults

    /// Unbinds vivid's platform device from its driver: the kernel removes the device under the open stream.
    private func unbindVivid() throws {
        let driver = "/sys/bus/platform/drivers/vivid"
        let device = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: driver).first { $0.hasPrefix("vivid.") },
                                   "no vivid device bound in \(driver)")
        try Data(device.utf8).write(to: URL(fileURLWithPath: driver + "/unbind"))
    }

    // MARK: - Helpers

    private var openDescriptors: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }

    private var residentKilobytes: Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
