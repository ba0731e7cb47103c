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

    /// What one reader saw: per FRAME its sequence, `dropped`, and age at receipt (capture → read, CLOCK_MONOTONIC).
    private final class Reading: @unchecked Sendable {
        let name: String
        let interval: Double
        private let lock = NSLock()
        private var frames: [(sequence: UInt64, dropped: UInt32, age: Double)] = []
        private var firstAt: Date?
        private var failure: String?

        init(name: String, interval: Double) {
            self.name = name
            self.interval = interval
        }

        func record(_ frame: FrameMessage) {
            let age = Double(Clock.monotonicNanoseconds() &- frame.captureMonotonicNanoseconds) / 1e9
            lock.lock()
            if frames.isEmpty { firstAt = Date() }
            frames.append((frame.sequence, frame.droppedForClient, age))
            lock.unlock()
        }

        func fail(_ error: Error) {
            lock.lock()
            failure = "\(error)"
            lock.unlock()
        }

        var result: (frames: [(sequence: UInt64, dropped: UInt32, age: Double)], firstAt: Date?, failure: String?) {
            lock.lock()
            defer { lock.unlock() }
            return (frames, firstAt, failure)
        }
    }

    func testSlowReadersGetFreshFramesAndStayWhileAFastOneLosesNothing() throws {
        let fps = 15.0, duration = 30.0
        let daemon = try startDaemon(fps: fps, timeout: 2)
        defer { daemon.stop() }
        // Each reader takes one frame, then "works" for its interval before the next (the fast one not at all).
        let readings = [Reading(name: "fast", interval: 0), Reading(name: "every 0.2 s", interval: 0.2), Reading(name: "every 0.5 s", interval: 0.5)]
        let end = Date().addingTimeInterval(duration)
        let done = DispatchGroup(), release = DispatchSemaphore(value: 0)
        for (index, reading) in readings.enumerated() {
            done.enter()
            Thread {
                do {
                    let client = try WireClient(path: daemon.config.socketPath, hello: Hello(encoding: index == 1 ? .rle : .raw, name: reading.name))
                    while Date() < end {
                        if case let .frame(frame) = try client.next(timeout: 5) { reading.record(frame) }
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
        // The rate the daemon actually published at (the span of sequence numbers seen, over the time since the first
        // reader's first frame): a loaded or emulated machine runs below the camera's nominal fps, and a reader can only
        // take what was published. Each reader is judged over its own time from its first frame: under emulation beside
        // other work, a reader's thread once connected 10 s after the others (the daemon had dropped nothing for it).
        let sequences = readings.flatMap { $0.result.frames.map(\.sequence) }
        let published = Double((sequences.max() ?? 0) - (sequences.min() ?? 0) + 1)
        let firstFrame = readings.compactMap { $0.result.firstAt }.min() ?? end
        let rate = min(fps, published / max(end.timeIntervalSince(firstFrame), 1))
        print("published \(Int(published)) frames in \(end.timeIntervalSince(firstFrame)) s: \(rate) fps of \(fps)")
        XCTAssertGreaterThan(published, duration, "the daemon published at least a frame a second")
        for reading in readings {
            let (frames, firstAt, failure) = reading.result
            XCTAssertNil(failure, "\(reading.name) was cut off")
            XCTAssertTrue(clients.contains { $0.name == reading.name }, "\(reading.name) is still connected: \(clients)")
            // Frames a reader could take at its pace from its first frame on (its reading plus a frame interval each),
            // within a quarter; and no reader started more than half the run late.
            let window = end.timeIntervalSince(firstAt ?? end)
            XCTAssertGreaterThan(window, duration / 2, "\(reading.name) took its first frame \(duration - window) s into the run")
            let expected = window / (reading.interval + 1 / rate)
            XCTAssertGreaterThan(Double(frames.count), 0.75 * expected, "\(reading.name) got \(frames.count) frames")
            let oldest = frames.map(\.age).max() ?? 0
            XCTAssertLessThan(oldest, 1.0, "\(reading.name): the oldest frame was \(oldest) s old")
            // `dropped` accounts for every frame between two it received.
            for (previous, next) in zip(frames, frames.dropFirst()) where next.sequence - previous.sequence - 1 != UInt64(next.dropped) {
                XCTFail("\(reading.name): #\(previous.sequence) then #\(next.sequence) with dropped \(next.dropped)")
                break
            }
            let ages = frames.map(\.age).sorted()
            let dropped = frames.map { Int($0.dropped) }.reduce(0, +)
            print("\(reading.name): \(frames.count) frames, age median \(ages.isEmpty ? 0 : ages[ages.count / 2]) s, oldest \(oldest) s, dropped \(dropped)")
        }
        // Keeping up, the fast reader lost no published frame, while the slow ones lost most.
        XCTAssertEqual(clients.first { $0.name == "fast" }?.dropped, 0, "\(clients)")
        XCTAssertGreaterThan(clients.first { $0.name == "every 0.5 s" }?.dropped ?? 0, 200, "\(clients)")
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
        // Its thread sleeps until that deadline: the slack is its own wake-up on a busy machine.
        XCTAssertLessThan(idle, timeout + 0.15, "disconnected \(idle) s after its last progress")
        XCTAssertGreaterThanOrEqual(gone, timeout - 0.05, "disconnected before the timeout")
        // One frame interval: the frame it left unread may have been sent up to one interval after its last read.
        // 0.15 s of it is slack for the scheduling of a busy machine.
        XCTAssertLessThan(gone, timeout + 1 / fps + 0.15, "gone \(gone) s after it stopped reading")
        _ = client
    }
}
