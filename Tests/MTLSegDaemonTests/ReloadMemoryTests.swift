import Foundation
import MTLSegTestSupport
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

/// A storm of reloads between an int8 and an fp32 model leaves resident memory where the first load put it:
/// the old model's memory goes back to the system (Allocator), none of it is kept alive.
///
/// The daemon starts on the fp32 model, so that the first load's figure includes OpenBLAS's working buffers:
/// OpenBLAS maps them at its first product and keeps them for the life of the process (about 7 MB resident
/// here), a one-time cost of having run an fp32 model at all, not memory a reload keeps.
final class ReloadMemoryTests: XCTestCase {
    private static let demo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("calibration/demo")

    private var residentKilobytes: Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func testResidentMemoryIsFlatAcrossAStormOfReloadsBetweenInt8AndFP32() throws {
        if ProcessInfo.processInfo.environment["MTLSEG_EMULATED"] != nil {
            throw XCTSkip("under qemu-user resident memory is the emulator's (Tests/ARM64/qemu_thread_rss.sh)")
        }
        // An even number, so the storm ends on the model it started on. Each reload hashes and loads a demo model
        // (seconds in a debug build), so 6 by default; MTLSEG_RELOAD_STORM=30 runs the full storm.
        let reloads = 2 * ((Int(ProcessInfo.processInfo.environment["MTLSEG_RELOAD_STORM"] ?? "") ?? 6) / 2)
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-reloads-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let models = [Self.demo.appendingPathComponent("crops-fp32.safetensors").path, Self.demo.appendingPathComponent("crops-int8.safetensors").path]
        var config = DaemonConfig()
        config.model = models[0]
        config.threads = 2
        config.fps = 15
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 320, height: 240, fps: 15) }
        try daemon.start()
        defer { daemon.stop() }
        // A consumer throughout, as in the field.
        let client = try WireClient(path: config.socketPath, hello: Hello(encoding: .rle, name: "reader"))
        let reading = Thread {
            while !Thread.current.isCancelled { _ = try? client.next(timeout: 1) }
        }
        reading.start()
        defer { reading.cancel() }

        /// Waits until the pipeline has published `count` more frames (run on the model loaded now; the one
        /// before is freed, and its memory given back, as the first of them starts). No frames is a failure: memory
        /// measured on a pipeline that stalled says nothing about what running the models leaves behind.
        func framesPass(_ count: UInt64, _ when: String) throws {
            let target = daemon.counters.published + count
            let deadline = Date().addingTimeInterval(30)
            while daemon.counters.published < target && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            guard daemon.counters.published >= target else {
                throw DaemonProcess.Failure("\(count) frames did not pass in 30 s \(when): \(daemon.counters.published) published, \(target) awaited")
            }
        }
        try framesPass(10, "after the first load")
        let afterFirstLoad = residentKilobytes
        var int8Loads: [Int] = []
        for reload in 1 ... reloads {
            config.model = models[reload % 2]
            XCTAssertTrue(daemon.reload(config: config), "reload \(reload)")
            try framesPass(5, "after reload \(reload)")
            if reload % 2 == 1 { int8Loads.append(residentKilobytes) }
        }
        XCTAssertEqual(daemon.stream.model.precision, "fp32")
        try framesPass(10, "after the storm")
        let afterStorm = residentKilobytes
        print("resident memory over \(reloads) reloads: fp32 \(afterFirstLoad) kB after the first load, \(afterStorm) kB after the storm; "
            + "int8 \(int8Loads.first ?? 0) kB after its first load, \(int8Loads.last ?? 0) kB after its last")
        // Built with AddressSanitizer, resident memory is no measure (printed above).
        guard !Sanitizer.keepsFreedMemory else { return }
        XCTAssertLessThanOrEqual(Double(afterStorm), 1.10 * Double(afterFirstLoad),
                                 "fp32: resident memory went from \(afterFirstLoad) kB to \(afterStorm) kB over \(reloads) reloads")
        XCTAssertLessThanOrEqual(Double(int8Loads.last ?? 0), 1.10 * Double(int8Loads.first ?? 0),
                                 "int8: resident memory went from \(int8Loads.first ?? 0) kB to \(int8Loads.last ?? 0) kB over the storm")
    }
}
