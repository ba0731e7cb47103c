import Foundation
import MTLSegEssentials
import MTLSegSocket
import MTLSegWire
import XCTest
@testable import MTLSegDaemon

/// The Prometheus text, read over its socket, parsed by the reference parser (prometheus_client),
/// and compared with what STATS (mtlseg status) says at the same moment.
final class MetricsTests: XCTestCase {
    /// GET or HEAD of /metrics (or /) gets the metrics; other methods, paths and broken or partial requests get an error
    /// status saying why, not the metrics.
    func testTheMetricsAnswerOnlyWhatAsksForThem() {
        func answer(_ request: String?) -> String {
            String(decoding: MetricsServer.response(to: request.map { Array($0.utf8) }, metrics: { "m 1\n" }), as: UTF8.self)
        }
        XCTAssertTrue(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.0 200 OK"))
        XCTAssertTrue(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").hasSuffix("\r\n\r\nm 1\n"))
        XCTAssertTrue(answer("GET /?x=1 HTTP/1.0\n\n").hasPrefix("HTTP/1.0 200 OK"))
        let head = answer("HEAD /metrics HTTP/1.0\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.0 200 OK") && head.hasSuffix("\r\n\r\n") && head.contains("Content-Length: 4"), head)
        XCTAssertTrue(answer("GET /nope HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.0 404"))
        let post = answer("POST /metrics HTTP/1.0\r\n\r\n")
        XCTAssertTrue(post.hasPrefix("HTTP/1.0 405") && post.contains("Allow: GET, HEAD"), post)
        XCTAssertTrue(answer("GET /metr").hasPrefix("HTTP/1.0 400"), "a request cut short is not answered with the metrics")
        XCTAssertTrue(answer("hello\r\n\r\n").hasPrefix("HTTP/1.0 400"))
        XCTAssertTrue(answer(nil).hasPrefix("HTTP/1.0 431"))
        for request in ["GET /nope HTTP/1.0\r\n\r\n", "GET /metr", "POST / HTTP/1.0\r\n\r\n"] {
            XCTAssertFalse(answer(request).contains("m 1"), request)
        }
    }

    func testMetricsParseAndEqualStatus() throws {
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-metrics-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var config = tinyModelConfig(socketIn: directory)
        config.metricsSocket = directory.appendingPathComponent("metrics.sock").path
        // The client sits unread while the test reads /metrics and parses it in Python (seconds under qemu-user):
        // the daemon's 2 s default would drop it before its STATS.
        config.clientTimeout = 60
        let source = PausableSource(TestFrameSource(width: 160, height: 120, fps: 30))
        let daemon = try Daemon(config: config) { _ in source }
        try daemon.start()
        defer { daemon.stop() }
        let client = try WireClient(path: config.socketPath, hello: Hello(name: "metrics test"))
        for _ in 0 ..< 10 { _ = try client.next(timeout: 2) }
        source.paused = true  // freeze the counters so both views see the same numbers
        // Frozen: every captured frame skipped or published (none in the slot or in flight), and the
        // same on two looks 10 ms apart (a frame let through just before the pause lands meanwhile).
        var previous: UInt64 = .max
        XCTAssertTrue(eventually {
            let counters = daemon.counters
            let settled = counters.captured == counters.skippedBeforeInference + counters.published
                && counters.inferred == counters.published && counters.captured == previous
            previous = counters.captured
            return settled
        }, "the counters did not settle: \(daemon.counters)")

        let metricsSocket = try UnixSocket.connect(to: config.metricsSocket!)
        XCTAssertTrue(metricsSocket.writeAll(Array("GET /metrics HTTP/1.0\r\n\r\n".utf8), timeout: 1))
        var response = Data(), buffer = [UInt8](repeating: 0, count: 65536)
        while let count = metricsSocket.read(into: &buffer, timeout: 2), count > 0 { response.append(contentsOf: buffer[0 ..< count]) }
        let text = String(decoding: response, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.0 200 OK"), text)
        let body = try XCTUnwrap(text.components(separatedBy: "\r\n\r\n").dropFirst().first)

        // Parse with prometheus_client (Debian's python3-prometheus-client; .ci/setup installs it) into {name{labels}: value}.
        let parser = Process()
        parser.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        parser.arguments = ["-c", """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
            print(json.dumps(out))
            """]
        let input = Pipe(), output = Pipe()
        parser.standardInput = input
        parser.standardOutput = output
        try parser.run()
        input.fileHandleForWriting.write(Data(body.utf8))
        try input.fileHandleForWriting.close()
        let parsed = output.fileHandleForReading.readDataToEndOfFile()
        parser.waitUntilExit()
        XCTAssertEqual(parser.terminationStatus, 0, "prometheus_client could not parse:\n\(body)")
        let samples = try XCTUnwrap(JSONSerialization.jsonObject(with: parsed) as? [String: Double])

        try client.requestStats()
        var stats: [String: Any] = [:]
        while stats.isEmpty {
            if case let .stats(bytes) = try client.next(timeout: 2) { stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]) }
        }
        let counters = try XCTUnwrap(stats["counters"] as? [String: Double])
        XCTAssertEqual(samples["mtlseg_frames_captured_total{}"], counters["captured"])
        XCTAssertEqual(samples["mtlseg_frames_published_total{}"], counters["published"])
        XCTAssertEqual(samples["mtlseg_frames_inferred_total{}"], counters["inferred"])
        XCTAssertEqual(samples["mtlseg_frames_skipped_total{}"], counters["skipped_before_inference"])
        XCTAssertGreaterThan(samples["mtlseg_frames_published_total{}"] ?? 0, 9)
        XCTAssertEqual(samples["mtlseg_stage_latency_seconds_count{\"stage\": \"inference\"}"], counters["published"])
        XCTAssertEqual(samples["mtlseg_clients{}"], 1)
        XCTAssertEqual(samples["mtlseg_clients_departed_total{}"], stats["clients_departed"] as? Double)
        let model = try XCTUnwrap(stats["model"] as? [String: String])
        let modelLabels = ["name": model["name"]!, "precision": model["precision"]!, "sha256": model["sha256"]!]
        let modelKey = "mtlseg_model_info" + String(decoding: try JSONSerialization.data(withJSONObject: modelLabels, options: .sortedKeys), as: UTF8.self)
        XCTAssertEqual(samples[modelKey.replacingOccurrences(of: ",", with: ", ").replacingOccurrences(of: ":", with: ": ")], 1,
                       "\(samples.keys.sorted())")
        let sourceStats = try XCTUnwrap(stats["source"] as? [String: String])
        // The state's kind: STATS's first word ("stalled (…)" here, the source being paused).
        let kind = sourceStats["state"]!.split(separator: " ").first.map(String.init) ?? ""
        XCTAssertEqual(samples["mtlseg_source_info{\"name\": \"\(sourceStats["name"]!)\", \"state\": \"\(kind)\"}"], 1, "\(samples.keys.sorted())")
        XCTAssertNotNil(samples["mtlseg_fps{\"kind\": \"published\"}"])
        XCTAssertNotNil(samples["mtlseg_last_frame_age_seconds{}"])
        XCTAssertEqual(samples["mtlseg_build_info{\"version\": \"\(MTLSegVersion.string)\"}"], 1, "\(samples.keys.sorted())")
    }
}
