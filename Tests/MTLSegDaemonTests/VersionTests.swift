import Foundation
import XCTest
import MTLSegDaemon
import MTLSegEssentials
import MTLSegTestSupport
import MTLSegWire

/// Which build a device runs, as an operator asks it: the daemon's STATS, `mtlseg status` and the start log name
/// the version the tools print with `--version`.
final class VersionTests: XCTestCase {
    private static var products: URL {
        var url = Bundle(for: VersionTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url
    }

    func testTheDaemonReportsItsVersionInStatsAndStatus() throws {
        let version = try runProcess(Self.products.appendingPathComponent("mtlseg").path, ["--version"])
        XCTAssertEqual(version.status, 0, version.output)
        XCTAssertEqual(version.output.trimmingCharacters(in: .whitespacesAndNewlines), MTLSegVersion.string)

        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-version-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = tinyModelConfig(socketIn: directory)
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: 30) }
        try daemon.start()
        defer { daemon.stop() }

        let client = try WireClient(path: config.socketPath, hello: Hello(tasks: [], name: "version"))
        try client.requestStats()
        var stats: [String: Any] = [:]
        while stats.isEmpty {
            if case let .stats(bytes) = try client.next(timeout: 2) {
                stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            }
        }
        XCTAssertEqual(stats["version"] as? String, MTLSegVersion.string)

        let status = try runProcess(Self.products.appendingPathComponent("mtlseg").path, ["status", "--socket", config.socketPath])
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("version    mtlsegd \(MTLSegVersion.string)\n"), status.output)
    }
}
