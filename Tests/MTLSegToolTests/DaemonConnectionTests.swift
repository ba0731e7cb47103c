import Foundation
import MTLSegSocket
import XCTest

/// `mtlseg status` and `mtlseg subscribe` where no daemon answers: the error says which case it is and what to do.
final class DaemonConnectionTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlseg-connect-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testNoSocketNamesTheServiceToCheck() throws {
        let socket = directory.appendingPathComponent("mtlsegd.sock").path
        for arguments in [["status", "--socket", socket], ["subscribe", "--socket", socket, "--count", "1"]] {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.errors.contains("\(socket): no such socket: no mtlsegd serves there (`systemctl status mtlsegd`"),
                          "\(arguments[0]): \(result.errors)")
        }
    }

    /// A socket file nobody listens on, as a daemon killed with SIGKILL leaves it.
    func testAStaleSocketFileIsCalledSo() throws {
        let socket = directory.appendingPathComponent("stale.sock").path
        // A listener whose process is gone: the file stays, nobody accepts (ECONNREFUSED).
        var gone: UnixSocket? = try UnixSocket.listen(at: socket, mode: 0o600)
        XCTAssertNotNil(gone)
        gone = nil
        XCTAssertTrue(FileManager.default.fileExists(atPath: socket))

        let result = try ToolRunner.run(["status", "--socket", socket])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("\(socket): nobody answers: the socket file is likely left by a daemon that stopped"), result.errors)
    }

    func testAPathThatIsNotASocketIsCalledSo() throws {
        let file = directory.appendingPathComponent("plain").path
        try Data("a file".utf8).write(to: URL(fileURLWithPath: file))
        for (path, kind) in [(file, "a file"), (directory.path, "a folder")] {
            for arguments in [["status", "--socket", path], ["subscribe", "--socket", path, "--count", "1"]] {
                let result = try ToolRunner.run(arguments)
                XCTAssertNotEqual(result.status, 0)
                XCTAssertTrue(result.errors.contains("\(path) is \(kind), not a socket"), "\(arguments[0]): \(result.errors)")
            }
        }
    }

    /// Something that accepts and closes without a word (our HELLO unread: the connection is reset) has closed the
    /// connection; it is not "no message in time".
    func testAPeerThatClosesAtOnceIsSaidToHaveClosed() throws {
        let socket = directory.appendingPathComponent("closer.sock").path
        let listener = try UnixSocket.listen(at: socket, mode: 0o600)
        let closer = Thread {
            for _ in 0 ..< 2 {
                guard listener.wait(for: Int16(POLLIN), timeout: 20), let peer = listener.acceptClient() else { return }
                usleep(50_000)  // the HELLO arrives and stays unread
                _ = peer
            }
        }
        closer.start()
        for arguments in [["status", "--socket", socket], ["subscribe", "--socket", socket, "--count", "1"]] {
            let result = try ToolRunner.run(arguments)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertTrue(result.errors.contains("the daemon closed the connection"), "\(arguments[0]): \(result.errors)")
        }
    }

    /// `subscribe` without --count runs until interrupted; Ctrl-C then ends it with its summary, not mid-line.
    /// mtlsegd on the tiny fixture and the synthetic source, serving at `socket` once this returns.
    private func startDaemon(socket: String) throws -> Process {
        let config = directory.appendingPathComponent("empty.toml")
        try Data("# the defaults\n".utf8).write(to: config)
        // The daemon as the Debian package ships it: a link named mtlsegd to mtlseg.
        let link = directory.appendingPathComponent("mtlsegd")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: ToolRunner.binary)
        let daemon = Process()
        daemon.executableURL = link
        daemon.arguments = ["--model", ToolRunner.fixture("mtl2-tiny.safetensors"), "--source", "synthetic", "--size", "160x120", "--fps", "20",
                            "--socket", socket, "--threads", "1", "--config", config.path]
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        return daemon
    }

    /// Waits (30 s at most) until `subscribe` has printed three frame lines ("#sequence …") to `output`.
    private func waitForThreeFrames(printedTo output: URL, file: StaticString = #filePath, line: UInt = #line) {
        func frames() -> Int { ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("#") }.count }
        let deadline = Date().addingTimeInterval(30)
        while frames() < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertGreaterThanOrEqual(frames(), 3, "frames arrive", file: file, line: line)
    }

    /// A daemon that stops under `subscribe --count N`: the summary of the frames that came, then why the stream ended.
    func testSubscribeSaysItsSummaryAndWhyWhenTheDaemonStops() throws {
        let socket = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try startDaemon(socket: socket)
        defer { if daemon.isRunning { daemon.terminate() }; daemon.waitUntilExit() }
        let output = directory.appendingPathComponent("subscribe.txt"), errors = directory.appendingPathComponent("subscribe.err")
        for file in [output, errors] { _ = FileManager.default.createFile(atPath: file.path, contents: nil) }
        let subscribe = Process()
        subscribe.executableURL = ToolRunner.binary
        subscribe.arguments = ["subscribe", "--socket", socket, "--count", "100000"]
        subscribe.standardOutput = try FileHandle(forWritingTo: output)
        subscribe.standardError = try FileHandle(forWritingTo: errors)
        try subscribe.run()
        waitForThreeFrames(printedTo: output)
        daemon.terminate()
        subscribe.waitUntilExit()
        XCTAssertNotEqual(subscribe.terminationStatus, 0, "fewer frames than --count")
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(lines.last?.contains("frames in") == true, "the summary comes last: \(lines.suffix(2))")
        let said = try String(contentsOf: errors, encoding: .utf8)
        XCTAssertTrue(said.contains("shutting_down") || said.contains("closed the connection"), said)
    }

    func testSubscribeEndsWithItsSummaryWhenInterrupted() throws {
        let socket = directory.appendingPathComponent("mtlsegd.sock").path
        let daemon = try startDaemon(socket: socket)
        defer { daemon.terminate(); daemon.waitUntilExit() }

        for (count, status) in [(nil, Int32(0)), ("1000", Int32(130))] as [(String?, Int32)] {
            let output = directory.appendingPathComponent("subscribe-\(count ?? "0").txt")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let subscribe = Process()
            subscribe.executableURL = ToolRunner.binary
            subscribe.arguments = ["subscribe", "--socket", socket] + (count.map { ["--count", $0] } ?? [])
            subscribe.standardOutput = try FileHandle(forWritingTo: output)
            try subscribe.run()
            waitForThreeFrames(printedTo: output)
            subscribe.interrupt()
            subscribe.waitUntilExit()
            // Without --count an interrupt is the way the run ends; before --count frames it is not what was asked.
            XCTAssertEqual(subscribe.terminationStatus, status, count ?? "no --count")
            let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
            XCTAssertTrue(lines.last?.contains("frames in") == true && lines.last?.contains("end-to-end median") == true, "\(lines.suffix(2))")
        }
    }
}
