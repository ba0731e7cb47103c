import Foundation
import MTLSegSocket
import MTLSegTestSupport
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

/// Clients that misbehave, and reloads under load: the daemon keeps serving, leaks nothing, tears nothing.
final class FaultTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-faults-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func model(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/\(name)").path
    }

    private func startDaemon(fps: Double = 60) throws -> Daemon {
        var config = DaemonConfig()
        config.model = model("mtl2-tiny.safetensors")
        config.threads = 1
        config.fps = fps
        config.clientTimeout = 0.5
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: fps) }
        try daemon.start()
        return daemon
    }

    private var openDescriptors: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }

    private var residentKilobytes: Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func testClientsThatComeGoAndVanishMidFrameLeakNothing() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let path = daemon.config.socketPath
        func churn(_ cycles: Int) throws {
            for cycle in 0 ..< cycles {
                // Sessions end a moment after their client goes (half-HELLO ones after the HELLO timeout):
                // keep below the client limit so every cycle is admitted.
                let deadline = Date().addingTimeInterval(10)
                while daemon.clients.count >= 12 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                switch cycle % 4 {
                case 0:  // connect, handshake, leave
                    _ = try WireClient(path: path, hello: Hello(name: "churn"))
                case 1:  // connect and hang up before HELLO
                    _ = try UnixSocket.connect(to: path)
                case 2:  // half a HELLO, then gone
                    let socket = try UnixSocket.connect(to: path)
                    _ = socket.writeAll(Array(MessageEncoder.encode(.hello(Hello())).prefix(7)), timeout: 1)
                default:  // read half a frame, then gone mid-message
                    let socket = try UnixSocket.connect(to: path)
                    _ = socket.writeAll(MessageEncoder.encode(.hello(Hello(name: "half reader"))), timeout: 1)
                    var buffer = [UInt8](repeating: 0, count: 300)
                    _ = socket.read(into: &buffer, timeout: 1)
                }
            }
        }
        try churn(40)  // warm up: threads, buffers, the allocator's pools
        // Measured with every session ended, as at the end (the half-HELLO ones wait out their 5 s).
        XCTAssertTrue(eventually { daemon.clients.isEmpty }, "the warm-up's sessions did not end")
        let (fds, rss) = (openDescriptors, residentKilobytes)
        try churn(200)
        // Sessions end asynchronously (hello timeouts are 5 s for the half-HELLO ones).
        let deadline = Date().addingTimeInterval(8)
        while daemon.clients.count > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        XCTAssertEqual(daemon.clients.count, 0, "every churned session ended")
        // Every departure is counted, but only the last few are kept whole (a client that reconnects all day must not
        // grow the daemon).
        XCTAssertEqual(daemon.departedCount, 240)
        XCTAssertEqual(daemon.departedClients.count, MaskServer.departedKept)
        XCTAssertLessThanOrEqual(openDescriptors, fds + 2, "file descriptors are flat")
        if Sanitizer.keepsFreedMemory {
            print("built with AddressSanitizer: resident memory +\(residentKilobytes - rss) kB, not checked")
        } else if ProcessInfo.processInfo.environment["MTLSEG_EMULATED"] == nil {
            XCTAssertLessThan(residentKilobytes - rss, 8 * 1024, "resident memory is flat (+\(residentKilobytes - rss) kB)")
        } else {
            // Under qemu-user RSS is the emulator's, and it keeps ~280 kB per ended thread (one per session here):
            // Tests/ARM64/qemu_thread_rss.sh. The native runs check it.
            print("emulated (MTLSEG_EMULATED): resident memory +\(residentKilobytes - rss) kB, not checked")
        }
        // And the daemon still serves.
        let client = try WireClient(path: path)
        guard case .frame = try client.next(timeout: 2) else { return XCTFail("no frame after the churn") }
    }

    func testReloadsUnderLoadTellEveryClientAndNeverMixFrames() throws {
        let daemon = try startDaemon(fps: 100)
        defer { daemon.stop() }
        let models = [model("mtl2-tiny.safetensors"), model("mtl3-tiny.safetensors")]
        let reloads = 50
        final class Watcher: @unchecked Sendable {
            let lock = NSLock()
            var changes = 0, frames = 0, mismatched = 0
            var failure: String?
        }
        let watchers = (0 ..< 3).map { _ in Watcher() }
        let threads = watchers.enumerated().map { index, watcher in
            Thread {
                do {
                    let client = try WireClient(path: daemon.config.socketPath, hello: Hello(encoding: index == 1 ? .rle : .raw, name: "watcher \(index)"))
                    while true {
                        switch try client.next(timeout: 3) {
                        case .streamChanged:
                            watcher.lock.lock(); watcher.changes += 1; let done = watcher.changes == reloads; watcher.lock.unlock()
                            if done { return }
                        case let .frame(frame):
                            // Every frame matches the description in force: one mask per task, each of the right size.
                            let masks = try client.masks(of: frame)
                            let ok = masks.count == client.stream.tasks.count
                                && masks.values.allSatisfy { $0.count == client.stream.maskWidth * client.stream.maskHeight }
                                && Set(masks.keys) == Set(client.stream.tasks.map(\.name))
                            watcher.lock.lock(); watcher.frames += 1; if !ok { watcher.mismatched += 1 }; watcher.lock.unlock()
                        case .stats: break
                        }
                    }
                } catch {
                    watcher.lock.lock(); watcher.failure = "\(error)"; watcher.lock.unlock()
                }
            }
        }
        threads.forEach { $0.start() }
        // Every watcher is in (past its HELLO) before the first reload.
        XCTAssertTrue(eventually { daemon.clients.filter { $0.name.hasPrefix("watcher") }.count == watchers.count }, "watchers did not connect")
        var config = daemon.config
        for reload in 0 ..< reloads {
            config.model = models[(reload + 1) % 2]
            XCTAssertTrue(daemon.reload(config: config))
            Thread.sleep(forTimeInterval: 0.05)
        }
        let deadline = Date().addingTimeInterval(10)
        func waiting(_ w: Watcher) -> Bool {
            w.lock.lock()
            defer { w.lock.unlock() }
            return w.changes < reloads && w.failure == nil
        }
        while watchers.contains(where: waiting) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        for (index, watcher) in watchers.enumerated() {
            watcher.lock.lock()
            XCTAssertNil(watcher.failure, "watcher \(index)")
            XCTAssertEqual(watcher.changes, reloads, "watcher \(index) was told of every stream change")
            XCTAssertEqual(watcher.mismatched, 0, "watcher \(index): a frame did not match its stream description")
            XCTAssertGreaterThan(watcher.frames, 0)
            watcher.lock.unlock()
        }
    }
}
