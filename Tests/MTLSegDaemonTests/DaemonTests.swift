import Foundation
import MTLSegCapture
import MTLSegSocket
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

final class DaemonTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func config(fps: Double = 60, timeout: Double = 0.5) -> DaemonConfig {
        var config = DaemonConfig()
        config.model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
        config.threads = 1
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        config.clientTimeout = timeout
        config.fps = fps
        return config
    }

    private func startDaemon(_ config: DaemonConfig) throws -> Daemon {
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: config.fps) }
        try daemon.start()
        return daemon
    }

    func testHandshakeDescribesTheStreamAndFramesCarryMasks() throws {
        let daemon = try startDaemon(config())
        defer { daemon.stop() }
        let client = try WireClient(path: daemon.config.socketPath, hello: Hello(encoding: .rle, tasks: ["rows"], name: "test"))
        XCTAssertEqual(client.stream.tasks.map(\.name), ["rows"])
        XCTAssertEqual(client.stream.tasks.first?.index, 1)
        XCTAssertEqual([client.stream.maskWidth, client.stream.maskHeight], [26, 19], "the fixture's 102x75 input gives 26x19 masks")
        XCTAssertEqual(client.stream.model.sha256.count, 64)
        XCTAssertEqual(client.stream.latencies, InferencePipeline.latencyNames)
        var sequences: [UInt64] = []
        while sequences.count < 5 {
            guard case let .frame(frame) = try client.next() else { continue }
            let masks = try client.masks(of: frame)
            XCTAssertEqual(Array(masks.keys), ["rows"])
            XCTAssertEqual(masks["rows"]?.count, 26 * 19)
            XCTAssertTrue(masks["rows"]!.allSatisfy { $0 < 3 }, "rows has 3 classes")
            XCTAssertEqual(frame.latenciesMicroseconds.count, 4)
            sequences.append(frame.sequence)
        }
        XCTAssertEqual(sequences, sequences.sorted())
    }

    /// The names of this process's threads, as `top -H` and `ps -L` show them.
    private static func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
    }

    /// Every thread of the daemon shows its whole name (Linux keeps 15 bytes), and those that
    /// stop with the daemon are gone once `stop` has returned. (The fixture is fp32: no worker
    /// threads; ThreadPoolTests names those.)
    func testThreadsShowTheirWholeNamesAndEndWithTheDaemon() throws {
        var settings = config()
        settings.metricsSocket = directory.appendingPathComponent("metrics.sock").path
        let daemon = try Daemon(config: settings) { _ in SyntheticFieldSource(width: 160, height: 120, framesPerSecond: 30) }
        try daemon.start()
        let client = try WireClient(path: settings.socketPath, hello: Hello(name: "names"))
        while true { if case .frame = try client.next(timeout: 10) { break } }
        let stopping: Set = ["cap-synthetic", "inference", "accept", "client-1", "metrics", "notify"]
        let running = Set(Self.threadNames())
        XCTAssertTrue(stopping.isSubset(of: running), "threads: \(running.sorted())")
        daemon.stop()
        let deadline = Date().addingTimeInterval(10)
        var left = stopping.intersection(Self.threadNames())
        while !left.isEmpty && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
            left = stopping.intersection(Self.threadNames())
        }
        XCTAssertEqual(left, [], "threads still running after stop")
    }

    /// A start that fails after the mask socket was bound (here: the metrics socket is taken by another daemon's)
    /// removes the mask socket again, so no client finds a socket nobody answers on.
    func testAFailedStartLeavesNoSocketBehind() throws {
        var first = config()
        first.metricsSocket = directory.appendingPathComponent("metrics.sock").path
        let running = try startDaemon(first)
        defer { running.stop() }
        var second = first
        second.socketPath = directory.appendingPathComponent("second.sock").path
        let daemon = try Daemon(config: second) { _ in TestFrameSource(width: 160, height: 120, fps: 30) }
        XCTAssertThrowsError(try daemon.start()) { XCTAssertTrue("\($0)".contains("metrics.sock"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: second.socketPath), "the second daemon's mask socket is gone")
        XCTAssertNoThrow(try WireClient(path: first.socketPath), "the first daemon serves on")
    }

    /// A source that can never be a camera (a plain file, /dev/null, a path outside /dev to nothing, a misspelt
    /// keyword) is refused when the source is made, so that --check-config and start fail instead of waiting forever;
    /// a device path under /dev not there yet is a camera to wait for.
    func testASourceThatCanNeverBeACameraIsRefused() throws {
        let plain = directory.appendingPathComponent("plain").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: plain))
        let cases = [(plain, "a file"), ("/dev/null", "not a video4linux one"), (directory.appendingPathComponent("frames").path, "nothing is there"),
                     ("video0", "nothing is there"), ("syntetic", "did you mean \"synthetic\"?"), ("Auto", "did you mean \"auto\"?")]
        for (path, reason) in cases {
            var settings = config()
            settings.source = path
            XCTAssertThrowsError(try SourceFactory.make(settings)) {
                XCTAssertTrue("\($0)".contains("\(path): not usable as a camera") && "\($0)".contains(reason), "\($0)")
            }
        }
        var absent = config()
        absent.source = "/dev/v4l/by-id/usb-Not_Plugged_In-video-index0"
        XCTAssertNoThrow(try SourceFactory.make(absent))
    }

    /// A client that completes the handshake and then never reads holds one frame in its socket, no more, while
    /// the others go on getting every frame; once it has read nothing for the client timeout it is disconnected,
    /// and the others carry on. Counted in frames, against generous deadlines: the same on an emulated CPU.
    func testAStuckClientIsDroppedAndDoesNotSlowTheOthers() throws {
        // The others are not slowed: with a client timeout no run of this test reaches, each reader gets 40 frames
        // while the stuck client sits on its first one. A daemon that waited on the stuck client would deliver none
        // of them until the timeout. (What share of the published frames a reader thread keeps up with is this
        // machine's scheduling, not judged.)
        do {
            let daemon = try startDaemon(config(fps: 30, timeout: 600))
            defer { daemon.stop() }
            let path = daemon.config.socketPath
            let stuck = try WireClient(path: path, hello: Hello(name: "stuck"))
            let readers = try (0 ..< 2).map { FrameReader(try WireClient(path: path, hello: Hello(encoding: $0 == 0 ? .raw : .rle, name: "reader \($0)"))) }
            defer { readers.forEach { $0.stop() } }
            let start = readers.map(\.sequences.count)
            XCTAssertTrue(eventually(within: 120) { zip(readers, start).allSatisfy { $0.sequences.count >= $1 + 40 } },
                          "the readers got \(readers.map(\.sequences.count)) frames (from \(start)) while a client sat stuck")
            let clients = daemon.clients
            let held = try XCTUnwrap(clients.first { $0.name == "stuck" }, "the stuck client is still connected: \(daemon.departedClients)")
            XCTAssertEqual(held.delivered, 1, "the stuck client holds one frame in its socket, and no more")
            for reader in clients where reader.name != "stuck" { print("\(reader.name): \(reader.delivered) frames delivered, \(reader.dropped) dropped") }
            _ = stuck
        }
        // Dropped: with a 0.5 s client timeout the stuck client is disconnected for not reading, and the readers go
        // on receiving after it has gone.
        let daemon = try startDaemon(config(fps: 30, timeout: 0.5))
        defer { daemon.stop() }
        let path = daemon.config.socketPath
        let stuck = try WireClient(path: path, hello: Hello(name: "stuck"))
        let readers = try (0 ..< 2).map { FrameReader(try WireClient(path: path, hello: Hello(encoding: $0 == 0 ? .raw : .rle, name: "reader \($0)"))) }
        defer { readers.forEach { $0.stop() } }
        XCTAssertTrue(eventually(within: 60) { daemon.departedClients.contains { $0.name == "stuck" } },
                      "the stuck client was not dropped: clients \(daemon.clients), gone \(daemon.departedClients)")
        let gone = try XCTUnwrap(daemon.departedClients.first { $0.name == "stuck" })
        let timeout = try XCTUnwrap(gone.readTimeout, "the stuck client left, but not for reading nothing: \(gone)")
        XCTAssertGreaterThanOrEqual(timeout.disconnected - timeout.lastProgress, 0.5)
        XCTAssertEqual(gone.delivered, 1, "the stuck client held one frame in its socket, and no more")
        let after = readers.map(\.sequences.count)
        XCTAssertTrue(eventually(within: 60) { zip(readers, after).allSatisfy { $0.sequences.count >= $1 + 10 } },
                      "after the stuck client went the readers got \(readers.map(\.sequences.count)) frames (from \(after))")
        XCTAssertEqual(Set(daemon.clients.map(\.name)), ["reader 0", "reader 1"])
        // The counters add up: every captured frame was skipped, inferred, or is in flight.
        let counters = daemon.counters
        XCTAssertLessThanOrEqual(counters.captured - counters.skippedBeforeInference - counters.inferred, 2)
        XCTAssertEqual(counters.inferred, counters.published)
        _ = stuck
    }

    func testGarbageGetsAnErrorAndOtherClientsCarryOn() throws {
        let daemon = try startDaemon(config())
        defer { daemon.stop() }
        let path = daemon.config.socketPath
        // A well-behaved client reads throughout.
        let good = try WireClient(path: path, hello: Hello(name: "good"))
        let tally = Tally()
        let reading = Thread {
            while !Thread.current.isCancelled {
                guard case .frame? = try? good.next(timeout: 1) else { continue }
                tally.add(0, dropped: 0)
            }
        }
        reading.start()
        defer { reading.cancel() }
        let garbage: [([UInt8], String)] = [
            ([5, 0, 0, 0, 0x09, 1, 2, 3, 4], "unknown message type"),
            ([3, 0, 0, 0, 0x01, 0x7B], "no HELLO"),                        // truncated HELLO, then silence
            (MessageEncoder.encode(.hello(Hello(protocol: 99))), "protocol"),
            (MessageEncoder.encode(.hello(Hello(tasks: ["weeds"]))), "no task 'weeds'"),
            // A task named twice would get two masks per FRAME against one in STREAM; 256 times, a mask count
            // over its byte, which trapped the daemon.
            (MessageEncoder.encode(.hello(Hello(tasks: ["rows", "plants", "rows"]))), "'tasks' names 'rows' twice"),
            (MessageEncoder.encode(.hello(Hello(tasks: Array(repeating: "rows", count: 256)))), "'tasks' names 'rows' twice"),
            ([0, 0, 0, 0], "no type byte"),
        ]
        for (bytes, expected) in garbage {
            let socket = try UnixSocket.connect(to: path)
            XCTAssertTrue(socket.writeAll(bytes, timeout: 1))
            var buffer = [UInt8](repeating: 0, count: 4096)
            var decoder = MessageDecoder(limit: 1 << 20)
            var reply: Message?
            let deadline = Date().addingTimeInterval(7)
            while reply == nil, Date() < deadline, let count = socket.read(into: &buffer, timeout: 7), count > 0 {
                decoder.append(Array(buffer[0 ..< count]))
                reply = try decoder.next()
            }
            guard case let .error(error)? = reply else { return XCTFail("no ERROR for \(bytes.prefix(8))") }
            XCTAssertTrue(error.message.contains(expected), "\(error.message) for \(bytes.prefix(8))")
            // Then the daemon closes the connection.
            XCTAssertEqual(socket.read(into: &buffer, timeout: 2), 0, "connection not closed after \(error)")
        }
        // curl at the mask socket is answered in HTTP, which it can show, then the connection is closed.
        let curl = try UnixSocket.connect(to: path)
        XCTAssertTrue(curl.writeAll(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), timeout: 1))
        var reply: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 4096)
        while let count = curl.read(into: &buffer, timeout: 7), count > 0 { reply += buffer[0 ..< count] }
        let text = String(decoding: reply, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.0 400 Bad Request\r\n") && text.contains("mask socket") && text.contains("[metrics] socket"), text)
        let before = tally.totals.0[0]
        XCTAssertTrue(eventually { tally.totals.0[0] > before }, "the good client still receives frames")
        XCTAssertEqual(daemon.clients.map(\.name), ["good"])
    }

    func testStatsShowAStallAsZeroFPSAndAGrowingAge() throws {
        // A client timeout out of reach: between two requests the status client reads nothing, and under emulation
        // beside other work one gap once passed the default 0.5 s, which dropped it.
        let settings = config(fps: 30, timeout: 60)
        let source = PausableSource(TestFrameSource(width: 160, height: 120, fps: 30))
        let daemon = try Daemon(config: settings) { _ in source }
        try daemon.start()
        defer { daemon.stop() }
        let client = try WireClient(path: settings.socketPath, hello: Hello(tasks: [], name: "status"))
        func stats() throws -> [String: Any] {
            try client.requestStats()
            while true {
                if case let .stats(bytes) = try client.next(timeout: 2) {
                    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
                }
            }
        }
        func published(_ stats: [String: Any]) -> Double? { (stats["fps"] as? [String: Double])?["published"] }
        func age(_ stats: [String: Any]) -> Double? { stats["last_frame_age_s"] as? Double }
        var flowing: [String: Any] = [:]
        XCTAssertTrue(try eventually(within: 20) {
            flowing = try stats()
            return published(flowing) ?? 0 > 5 && age(flowing) ?? 99 < 0.5
        }, "frames never flowed: \(flowing)")
        XCTAssertNotNil((flowing["latency_ms"] as? [String: Any])?["inference"])
        source.paused = true
        var stalled: [String: Any] = [:]
        XCTAssertTrue(try eventually(within: 20) {
            stalled = try stats()
            return published(stalled) == 0 && age(stalled) ?? 0 > 1.5
        }, "the stall never showed: \(stalled)")
        let stalledAge = age(stalled) ?? 0
        XCTAssertTrue(try eventually { age(try stats()) ?? 0 > stalledAge }, "the age grows")
    }

    /// A reload takes over the client timeout and max_clients at once, and keeps the socket path (a restart moves it).
    func testAReloadAppliesTheSocketSettingsItCanAndKeepsThePath() throws {
        var settings = config(fps: 30, timeout: 600)
        let daemon = try startDaemon(settings)
        defer { daemon.stop() }
        let path = settings.socketPath
        let stuck = try WireClient(path: path, hello: Hello(name: "stuck"))
        let reader = FrameReader(try WireClient(path: path, hello: Hello(name: "reader")))
        defer { reader.stop() }
        XCTAssertTrue(eventually { daemon.clients.first { $0.name == "stuck" }?.delivered == 1 }, "the stuck client holds a frame")

        settings.clientTimeout = 0.5
        settings.maxClients = 2
        settings.socketPath = directory.appendingPathComponent("elsewhere.sock").path
        XCTAssertTrue(daemon.reload(config: settings))
        XCTAssertTrue(eventually(within: 30) { daemon.departedClients.contains { $0.name == "stuck" && $0.readTimeout != nil } },
                      "the stuck client is dropped under the reloaded timeout: \(daemon.departedClients)")
        XCTAssertEqual(daemon.config.clientTimeout, 0.5)
        XCTAssertEqual(daemon.config.socketPath, path, "the socket stays where it is until a restart")
        XCTAssertFalse(FileManager.default.fileExists(atPath: settings.socketPath))
        // Two clients at most now: the reader and one more; a third is refused.
        let second = try WireClient(path: path, hello: Hello(name: "second"))
        XCTAssertThrowsError(try WireClient(path: path, hello: Hello(name: "third"))) { error in
            guard case let WireClient.Failure.refused(refusal)? = error as? WireClient.Failure else { return XCTFail("\(error)") }
            XCTAssertEqual(refusal.code, WireError.serverFull)
        }
        _ = (stuck, second)
    }

    /// A reload that moves what waits for a restart to something start-up refuses says so then: a socket in a missing
    /// folder, a folder whose images do not read, something that is no camera.
    func testWhatARestartWouldRefuseIsNamedAtTheReload() throws {
        var settings = DaemonConfig()
        settings.source = "synthetic"
        XCTAssertEqual(Daemon.restartProblems(settings, waiting: ["source.device"]), [])
        let images = directory.appendingPathComponent("unreadable").path
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: images + "/a.png"))
        settings.source = images
        settings.socketPath = directory.appendingPathComponent("missing/mtlsegd.sock").path
        let problems = Daemon.restartProblems(settings, waiting: ["source.device", "socket.path"])
        XCTAssertEqual(problems.count, 2, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("source.device: ") && $0.contains("none of its 1 images reads") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("socket.path: ") && $0.contains("does not exist") }, "\(problems)")
        XCTAssertEqual(Daemon.restartProblems(settings, waiting: ["source.fps"]), [], "only what changed is checked")
        settings.source = "synthetc"
        XCTAssertTrue(Daemon.restartProblems(settings, waiting: ["source.device"]).first?.contains("did you mean \"synthetic\"") == true)
    }

    /// A camera's instance is restarted by its own unit's name, not the single-camera service's.
    func testTheRestartAdviceNamesTheInstancesUnit() {
        XCTAssertTrue(Daemon.restartAdvice(waiting: ["source.fps"], unit: "mtlsegd@front").hasSuffix("(systemctl restart mtlsegd@front)"))
        XCTAssertTrue(Daemon.restartAdvice(waiting: ["socket.path"], unit: "mtlsegd").contains("socket.path changed"))
    }

    /// A client that asks for STATS without reading the replies gets no pile of them: one is owed until it reads, and the
    /// client timeout drops it as any client that does not read.
    func testAClientAskingForStatsWithoutReadingIsDropped() throws {
        let daemon = try startDaemon(config(fps: 30, timeout: 0.5))
        defer { daemon.stop() }
        let socket = try UnixSocket.connect(to: daemon.config.socketPath)
        XCTAssertTrue(socket.writeAll(MessageEncoder.encode(.hello(Hello(tasks: [], name: "asker"))), timeout: 1))
        let request = MessageEncoder.encode(.statsRequest)
        let burst = Array((0 ..< 4096).map { _ in request }.joined())
        var sent = 0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !daemon.departedClients.contains(where: { $0.name == "asker" }) {
            if socket.writeAll(burst, timeout: 0.05) { sent += burst.count }
        }
        let gone = try XCTUnwrap(daemon.departedClients.first { $0.name == "asker" }, "the asker was never dropped after \(sent) bytes")
        XCTAssertNotNil(gone.readTimeout, "dropped for not reading")
        // It kept asking: more than one burst went in (how many fit in the 0.5 s is this machine's speed).
        XCTAssertGreaterThan(sent, burst.count, "it kept asking (\(sent) bytes of requests)")
    }

    func testAHelloNameOverTheLimitIsRefused() throws {
        let daemon = try startDaemon(config())
        defer { daemon.stop() }
        XCTAssertNoThrow(try WireClient(path: daemon.config.socketPath, hello: Hello(name: String(repeating: "n", count: 128))))
        XCTAssertThrowsError(try WireClient(path: daemon.config.socketPath, hello: Hello(name: String(repeating: "n", count: 129)))) { error in
            XCTAssertTrue("\(error)".contains("'name' is longer than 128 bytes"), "\(error)")
        }
    }

    func testStatsAndReloadOntoABrokenModelKeepsServing() throws {
        var settings = config()
        let daemon = try startDaemon(settings)
        defer { daemon.stop() }
        let client = try WireClient(path: settings.socketPath)
        let before = client.stream.model.sha256
        settings.model = directory.appendingPathComponent("broken.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: settings.model))
        XCTAssertFalse(daemon.reload(config: settings))
        XCTAssertEqual(daemon.stream.model.sha256, before)
        try client.requestStats()
        var gotStats = false, frames = 0
        while !gotStats || frames < 3 {
            switch try client.next(timeout: 2) {
            case let .stats(bytes):
                let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
                XCTAssertNotNil((stats["counters"] as? [String: Any])?["published"])
                gotStats = true
            case .frame: frames += 1
            case .streamChanged: XCTFail("a failed reload must not change the stream")
            }
        }
    }
}

/// Frames received and lost per reader thread.
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var received = [0, 0], dropped = [0, 0]

    func add(_ index: Int, dropped lost: Int) {
        lock.lock()
        received[index] += 1
        dropped[index] += lost
        lock.unlock()
    }

    var totals: ([Int], [Int]) {
        lock.lock()
        defer { lock.unlock() }
        return (received, dropped)
    }
}
