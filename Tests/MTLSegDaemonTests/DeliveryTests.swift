import Foundation
import MTLSegEssentials
import MTLSegCapture
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

/// Newest-frame delivery as consumers see it: slow readers get fresh frames and stay connected, `dropped`
/// accounts for every frame they missed, a fast reader beside them loses nothing, and a client that stops
/// reading is disconnected after the timeout.
final class DeliveryTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-delivery-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func startDaemon(fps: Double, timeout: Double) throws -> Daemon {
        var config = DaemonConfig()
        config.model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
        config.threads = 1
        config.fps = fps
        config.clientTimeout = timeout
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: fps) }
        try daemon.start()
        return daemon
    }

    /// What one reader saw: per FRAME its sequence, `dropped`, capture time (CLOCK_MONOTONIC), age at receipt (capture →
    /// read, printed only), and the capture time of a frame the daemon had offered every client when this reader asked.
    private final class Reading: @unchecked Sendable {
        typealias Frame = (sequence: UInt64, dropped: UInt32, capture: UInt64, age: Double, offeredBeforeAsking: UInt64?)
        let name: String
        let interval: Double
        private let lock = NSLock()
        private var frames: [Frame] = []
        private var failure: String?

        init(name: String, interval: Double) {
            self.name = name
            self.interval = interval
        }

        func record(_ frame: FrameMessage, offeredBeforeAsking: UInt64?) {
            let age = Double(Clock.monotonicNanoseconds() &- frame.captureMonotonicNanoseconds) / 1e9
            lock.lock()
            frames.append((frame.sequence, frame.droppedForClient, frame.captureMonotonicNanoseconds, age, offeredBeforeAsking))
            lock.unlock()
        }

        /// The capture time of the frame before the last one this reader received: the daemon offers a frame to its
        /// clients one after another, so the last one may not have reached the others yet, but the one before has.
        var offeredToAll: UInt64? {
            lock.lock()
            defer { lock.unlock() }
            return frames.count < 2 ? nil : frames[frames.count - 2].capture
        }

        func fail(_ error: Error) {
            lock.lock()
            failure = "\(error)"
            lock.unlock()
        }

        var result: (frames: [Frame], failure: String?) {
            lock.lock()
            defer { lock.unlock() }
            return (frames, failure)
        }
    }

    /// Judged by rules, not by rates: how many frames a reader gets in the run depends on how fast this machine
    /// publishes, and how old they are on how its threads are scheduled (both printed, for a reader of the log).
    func testSlowReadersGetFreshFramesAndStayWhileAFastOneLosesNothing() throws {
        let fps = 15.0, duration = 30.0
        let daemon = try startDaemon(fps: fps, timeout: 2)
        defer { daemon.stop() }
        // Each reader takes one frame, then "works" for its interval before the next (the fast one not at all).
        let readings = [Reading(name: "fast", interval: 0), Reading(name: "every 0.2 s", interval: 0.2), Reading(name: "every 0.5 s", interval: 0.5)]
        let fast = readings[0]
        let end = Date().addingTimeInterval(duration)
        let done = DispatchGroup(), release = DispatchSemaphore(value: 0)
        for (index, reading) in readings.enumerated() {
            done.enter()
            Thread {
                do {
                    let client = try WireClient(path: daemon.config.socketPath, hello: Hello(encoding: index == 1 ? .rle : .raw, name: reading.name))
                    while Date() < end {
                        let offered = fast.offeredToAll
                        if case let .frame(frame) = try client.next(timeout: 5) { reading.record(frame, offeredBeforeAsking: offered) }
                        if reading.interval > 0 { Thread.sleep(forTimeInterval: reading.interval) }
                    }
                    // Connected until the daemon's list of clients has been read.
                    done.leave()
                    release.wait()
                    _ = client
                } catch {
                    reading.fail(error)
                    done.leave()
                }
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + duration + 20), .success, "the readers finished")
        let clients = daemon.clients
        readings.forEach { _ in release.signal() }
        let sequences = readings.flatMap { $0.result.frames.map(\.sequence) }
        print("published \((sequences.max() ?? 0) - (sequences.min() ?? 0) + 1) frames in \(duration) s (nominal \(fps) fps)")
        for reading in readings {
            let (frames, failure) = reading.result
            XCTAssertNil(failure, "\(reading.name) was cut off")
            XCTAssertTrue(clients.contains { $0.name == reading.name }, "\(reading.name) is still connected: \(clients)")
            // The rules below compare frames in pairs: a reader with fewer than three frames would check next to nothing.
            XCTAssertGreaterThanOrEqual(frames.count, 3, "\(reading.name) got \(frames.count) frames in \(duration) s")
            // `dropped` accounts for every frame between two it received.
            for (previous, next) in zip(frames, frames.dropFirst()) where next.sequence - previous.sequence - 1 != UInt64(next.dropped) {
                XCTFail("\(reading.name): #\(previous.sequence) then #\(next.sequence) with dropped \(next.dropped)")
                break
            }
            // Fresh: the daemon sends a reader its next frame only once it has read the last one, and that frame lags
            // the newest by at most the mailbox's catch-up window (capture times, the daemon's own clock). So the frame
            // after the one a reader asked for was captured at most that window before a frame already offered to
            // every client when it asked. A daemon that queued frames for a slow reader hands it older and older
            // ones. (Not from the first frame: it may arrive in one read with the STREAM message, before the reader
            // asks for it.)
            let window = FrameMailbox.catchUpWindowNanoseconds
            for (asked, next) in zip(frames.dropFirst(), frames.dropFirst(2)) {
                guard let offered = asked.offeredBeforeAsking, next.capture &+ window < offered else { continue }
                XCTFail("\(reading.name): #\(next.sequence), captured \(Double(offered - next.capture) / 1e9) s before a frame offered when it asked")
                break
            }
            let ages = frames.map(\.age).sorted()
            let dropped = frames.map { Int($0.dropped) }.reduce(0, +)
            print("\(reading.name): \(frames.count) frames, age median \(ages.isEmpty ? 0 : ages[ages.count / 2]) s, oldest \(ages.last ?? 0) s, dropped \(dropped)")
        }
        // Keeping up, the fast reader lost no published frame, while the slowest was not sent every one (without a
        // frame lost, it read as fast as frames came, and the freshness rule above was not put to the test).
        XCTAssertEqual(clients.first { $0.name == "fast" }?.dropped, 0, "\(clients)")
        let slow = readings[2].result.frames
        XCTAssertGreaterThan(slow.map { Int($0.dropped) }.reduce(0, +), 0, "the reader every 0.5 s lost no frame: \(clients)")
    }

    func testAClientThatStopsReadingIsGoneAfterTheTimeout() throws {
        let fps = 15.0, timeout = 1.0
        let daemon = try startDaemon(fps: fps, timeout: timeout)
        defer { daemon.stop() }
        let client = try WireClient(path: daemon.config.socketPath, hello: Hello(name: "stopper"))
        for _ in 0 ..< 10 { _ = try client.next(timeout: 5) }
        let stopped = Double(Clock.monotonicNanoseconds()) / 1e9  // it reads nothing from now on; the daemon's clock
        let deadline = Date().addingTimeInterval(timeout + 10)
        while !daemon.departedClients.contains(where: { $0.name == "stopper" }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        let departed = try XCTUnwrap(daemon.departedClients.first { $0.name == "stopper" }, "the client that stopped reading was not disconnected")
        // Timed by the daemon's own record of its decision, not by when this thread noticed it.
        let record = try XCTUnwrap(departed.readTimeout, "disconnected, but not for its reading: \(departed)")
        let idle = record.disconnected - record.lastProgress, gone = record.disconnected - stopped
        print("stopper: disconnected \(idle) s after its last progress, \(gone) s after it stopped reading")
        // The rule itself: never before the timeout, counted from the last progress it saw.
        XCTAssertGreaterThanOrEqual(idle, timeout, "disconnected \(idle) s after its last progress")
        XCTAssertGreaterThanOrEqual(gone, timeout - 0.05, "disconnected before the timeout")
        // How long after the timeout it went is its thread's wake-up on this machine: printed above, not judged (the
        // deadline of the wait for it catches a daemon that never disconnects it).
        _ = client
    }
}
