import Foundation
import MTLSegImage
import XCTest
@testable import MTLSegDaemon

/// The Python client (Sources/MTLSegWire/python), written from PROTOCOL.md alone, against a running mtlsegd:
/// it must decode exactly the masks `mtlseg subscribe --png` writes for the same frames.
final class PythonClientTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static var products: URL {
        var url = Bundle(for: PythonClientTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url
    }

    func testPythonClientDecodesWhatSubscribeWrites() throws {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlseg-python-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("mtlsegd.sock").path
        let config = directory.appendingPathComponent("empty.toml")
        try Data("# the defaults\n".utf8).write(to: config)
        let daemon = Process()
        daemon.executableURL = Self.products.appendingPathComponent("mtlsegd")
        daemon.arguments = ["--model", Self.repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures/mtl3-tiny.safetensors").path,
                            "--source", "synthetic", "--size", "160x120", "--fps", "40", "--socket", socket, "--threads", "1", "--config", config.path]
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }

        // Both consumers at once: the Python client (raw class ids to .bin) and mtlseg subscribe (grey PNGs).
        let subscribe = Process()
        subscribe.executableURL = Self.products.appendingPathComponent("mtlseg")
        subscribe.arguments = ["subscribe", "--socket", socket, "--count", "160", "--png", directory.appendingPathComponent("png").path]
        subscribe.standardOutput = FileHandle.nullDevice
        try subscribe.run()
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", Self.repository.appendingPathComponent("Sources/MTLSegWire/python/check_against_subscribe.py").path,
                            socket, "120", directory.appendingPathComponent("bin").path]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let summaryText = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        subscribe.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0, summaryText)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(summaryText.utf8)) as? [String: Any], summaryText)
        XCTAssertEqual(summary["frames"] as? Int, 120)
        // `dropped` accounts for every frame between two it received (the pipeline's skips too, on a busy machine).
        XCTAssertEqual(summary["dropped"] as? Int, summary["gaps"] as? Int, "dropped adds up to the sequence gaps")
        let (width, height) = (summary["mask_width"] as! Int, summary["mask_height"] as! Int)

        var compared = 0
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("bin").path)
        for file in files {
            let name = (file as NSString).deletingPathExtension  // <sequence>.<task>
            let png = directory.appendingPathComponent("png/\(name).png").path
            guard FileManager.default.fileExists(atPath: png) else { continue }
            let mine = [UInt8](try Data(contentsOf: directory.appendingPathComponent("bin/\(file)")))
            let image = try ImageFile.read(path: png)
            XCTAssertEqual([image.width, image.height], [width, height])
            XCTAssertEqual(mine, stride(from: 0, to: image.pixels.count, by: 3).map { image.pixels[$0] }, name)
            compared += 1
        }
        XCTAssertGreaterThanOrEqual(compared, 3 * 100, "at least 100 frames of all three tasks compared")
    }

    /// A FRAME that breaks PROTOCOL.md (cut short, runs that do not cover the mask, a task unknown or twice, bytes left
    /// over) reaches a consumer of the Python client as ProtocolError, the one exception it catches for that.
    func testPythonClientRaisesProtocolErrorForMalformedFrames() throws {
        let summary = try runPythonCheck("check_malformed_frames.py")
        XCTAssertEqual(summary["well_formed"] as? String, "ok", "the decoder takes a well-formed FRAME")
        XCTAssertGreaterThanOrEqual(summary.count, 10, "\(summary)")
        for (name, outcome) in summary where name != "well_formed" {
            XCTAssertEqual(outcome as? String, "ProtocolError", name)
        }
    }

    /// Runs one of the Python check scripts to its end (its exit status must be 0) and reads its last line as a JSON object.
    /// A socket path no daemon can mend raises at once, naming the path, instead of being retried forever.
    func testPythonClientRaisesAtOnceForAPathThatCannotBeTheSocket() throws {
        let summary = try runPythonCheck("check_bad_paths.py")
        XCTAssertEqual(summary["failures"] as? [String], [], "\(summary)")
        XCTAssertEqual((summary["cases"] as? [String: String])?.count, 5, "\(summary)")
    }

    private func runPythonCheck(_ script: String, _ arguments: [String] = []) throws -> [String: Any] {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", Self.repository.appendingPathComponent("Sources/MTLSegWire/python/\(script)").path] + arguments
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0, text)
        let line = try XCTUnwrap(text.split(separator: "\n").last.map(String.init), text)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], text)
    }

    /// Refusals, a control connection, STATS and reloads, as PROTOCOL.md describes them, seen by the Python client.
    func testPythonClientHandlesWhatTheProtocolSays() throws {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlseg-python-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fixtures = Self.repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures")
        var config = DaemonConfig()
        config.model = fixtures.appendingPathComponent("mtl2-tiny.safetensors").path
        config.threads = 1
        config.fps = 30
        config.maxClients = 2
        config.width = 160
        config.height = 120
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: 30) }
        try daemon.start()
        defer { daemon.stop() }

        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", Self.repository.appendingPathComponent("Sources/MTLSegWire/python/check_protocol.py").path, config.socketPath]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        let reader = output.fileHandleForReading
        var text = ""
        /// Reads the script's output until `line` has come (or it ended): whether it came.
        func readUntil(_ line: String) -> Bool {
            let deadline = Date().addingTimeInterval(30)
            while !text.contains(line + "\n") && Date() < deadline {
                let data = reader.availableData
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            return text.contains(line + "\n")
        }
        XCTAssertTrue(readUntil("ready"), "the Python client did not stream: \(text)")
        var reload = config
        reload.model = fixtures.appendingPathComponent("mtl3-tiny.safetensors").path  // has "rows" too
        XCTAssertTrue(daemon.reload(config: reload))
        // The second reload only once the client has seen the first: sooner, the session could take both as one change
        // (ClientSession.changeStream keeps the latest) and the client would see only the error.
        XCTAssertTrue(readUntil("changed"), "the Python client saw no STREAM_CHANGED: \(text)")
        reload.model = fixtures.appendingPathComponent("segformer-tiny.safetensors").path  // has no "rows"
        XCTAssertTrue(daemon.reload(config: reload))
        text += String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0, text)
        let line = try XCTUnwrap(text.split(separator: "\n").last.map(String.init))
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], text)
        XCTAssertEqual((summary["bad_encoding"] as? [String: String])?["code"], "bad_message")
        XCTAssertTrue((summary["bad_encoding"] as? [String: String])?["message"]?.contains("'encoding'") ?? false, "\(summary)")
        XCTAssertTrue((summary["wrong_type"] as? [String: String])?["message"]?.contains("'tasks'") ?? false, "\(summary)")
        XCTAssertEqual(summary["unknown_task"] as? String, "unknown_task")
        XCTAssertEqual((summary["bad_mask_size"] as? [String: String])?["code"], "bad_message")
        XCTAssertTrue((summary["bad_mask_size"] as? [String: String])?["message"]?.contains("'mask_size'") ?? false, "\(summary)")
        let sized = try XCTUnwrap(summary["sized"] as? [Any], "\(summary)")
        XCTAssertEqual(sized.count, 4)
        XCTAssertEqual(sized.first as? Int, 160)
        XCTAssertEqual(sized.dropFirst().first as? Int, 120)
        XCTAssertEqual(sized.dropFirst(2).first as? String, "source")
        XCTAssertEqual(sized.last as? Int, 160 * 120)
        XCTAssertEqual((summary["control_tasks"] as? [Any])?.count, 0)
        XCTAssertEqual(summary["stats_keys"] as? [String], ["clients", "clients_departed", "counters", "fps", "last_frame_age_s", "latency_ms",
                                                            "model", "source", "uptime_s", "version"])
        XCTAssertEqual(summary["third_client"] as? String, "server_full")
        XCTAssertEqual(summary["control_when_full"] as? Bool, true, "a control connection (mtlseg status) refused by a full daemon: \(summary)")
        XCTAssertEqual(summary["past_control_slots"] as? String, "server_full")
        let events = try XCTUnwrap(summary["events"] as? [[Any]], "\(summary)")
        XCTAssertEqual(events.count, 2, "\(events)")
        XCTAssertEqual(events.first?.first as? String, "stream_changed")
        XCTAssertEqual(events.first?.last as? [String], ["rows"])
        XCTAssertEqual(events.last?.map { "\($0)" }, ["error", "unknown_task"])
        XCTAssertEqual(summary["dropped_adds_up"] as? Bool, true)
        // summary["oldest_s"], the age of the oldest frame across two reloads, is this machine's latency: not judged here.
    }

    /// Retries and reconnects, as the client's docstring and README promise: `with Subscriber(…)` waits for a daemon
    /// not started yet and for one that is full (server_full), errors that retrying cannot fix raise at once, and the
    /// first frame after the daemon restarts (with another model and capture size, then the same) is marked
    /// stream_changed and reconnected. check_reconnect.py starts and stops mtlsegd itself and checks each step.
    func testPythonClientRetriesAndMarksReconnects() throws {
        let summary = try runPythonCheck("check_reconnect.py", [Self.products.appendingPathComponent("mtlsegd").path,
                                                                Self.repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures").path])
        XCTAssertEqual(summary["failures"] as? [String], [], "\(summary)")
        XCTAssertEqual(summary["full_no_retry"] as? String, "server_full")
        XCTAssertEqual(summary["control_when_full"] as? [String], ["clients", "clients_departed"], "\(summary)")
        let restart = try XCTUnwrap(summary["restart_other_model"] as? [String: Any], "\(summary)")
        XCTAssertEqual(restart["stream_changed"] as? Bool, true, "\(restart)")
        XCTAssertEqual(restart["reconnected"] as? Bool, true, "\(restart)")
        XCTAssertEqual(restart["tasks"] as? [[String]], [["plants", "rows"], ["plants", "rows", "gaps"]])
        XCTAssertEqual(restart["mask"] as? [[Int]], [[160, 120], [320, 240]])
        let same = try XCTUnwrap(summary["restart_same_model"] as? [String: Any], "\(summary)")
        XCTAssertEqual(same["stream_changed"] as? Bool, true, "\(same)")
        XCTAssertEqual(summary["stats_after_restart"] as? Bool, true, "\(summary)")
    }
}
