import Foundation
import MTLSegWire
import XCTest

/// mtlsegd processes and their socket: a live daemon's socket cannot be taken over, a daemon removes only
/// its own socket file, and a socket group it may not give is a clear error.
final class SocketOwnershipTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let model = repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
    private static var daemonBinary: String {
        var url = Bundle(for: SocketOwnershipTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("mtlsegd").path
    }
    private var directory: String!

    override func setUpWithError() throws {
        directory = "/tmp/mtlsegd-owner-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data("# the defaults\n".utf8).write(to: URL(fileURLWithPath: directory + "/empty.toml"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func daemonArguments(socket: String, config: String? = nil) -> [String] {
        ["--model", Self.model, "--source", "synthetic", "--size", "160x120", "--fps", "30", "--threads", "1",
         "--socket", socket, "--config", config ?? directory + "/empty.toml"]
    }

    /// Runs mtlsegd expecting it to refuse to start: its status and output, or nil (and the daemon stopped) if it
    /// is still running after 30 s.
    private func runExpectingExit(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = URL(fileURLWithPath: directory + "/refused-\(UUID().uuidString.prefix(8)).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return nil
        }
        return (process.terminationStatus, try String(contentsOf: output, encoding: .utf8))
    }

    /// Starts mtlsegd and waits (against a deadline) until a client gets a frame. A daemon that never serves is a
    /// failure, not a skip: for the second daemon of testAStoppingDaemonLeavesASocketThatReplacedItsOwn, taking the
    /// path is the behaviour under test.
    private func startServing(socket: String) throws -> Process {
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: Self.daemonBinary)
        daemon.arguments = daemonArguments(socket: socket)
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && daemon.isRunning {
            if let client = try? WireClient(path: socket, hello: Hello(name: "probe")), case .frame = try client.next(timeout: 5) { return daemon }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let exited = !daemon.isRunning
        if !exited { daemon.terminate() }
        daemon.waitUntilExit()
        throw DaemonProcess.Failure("mtlsegd never served on \(socket) (\(exited ? "it exited with status \(daemon.terminationStatus)" : "30 s"))")
    }

    func testASecondDaemonRefusesALiveSocketAndLeavesItToTheFirst() throws {
        let socket = directory + "/mtlsegd.sock"
        let first = try startServing(socket: socket)
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }

        let second = try XCTUnwrap(try runExpectingExit(Self.daemonBinary, daemonArguments(socket: socket)),
                                   "the second daemon started on a live socket")
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.output.contains("already serving on this socket"), second.output)
        // The first still serves on its own file.
        let client = try WireClient(path: socket, hello: Hello(name: "after the second"))
        guard case .frame = try client.next(timeout: 5) else { return XCTFail("the first daemon no longer serves") }

        first.terminate()
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the first daemon removes its own socket")
    }

    func testAStoppingDaemonLeavesASocketThatReplacedItsOwn() throws {
        let socket = directory + "/mtlsegd.sock"
        let first = try startServing(socket: socket)
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        // Its file removed behind its back, a second daemon takes the path.
        unlink(socket)
        let second = try startServing(socket: socket)
        defer { if second.isRunning { second.terminate(); second.waitUntilExit() } }

        first.terminate()
        first.waitUntilExit()
        let client = try WireClient(path: socket, hello: Hello(name: "second's client"))
        guard case .frame = try client.next(timeout: 5) else { return XCTFail("the second daemon's socket is gone") }
    }

    func testAMetricsSocketOnTheMaskSocketPathIsAConfigurationError() throws {
        let socket = directory + "/mtlsegd.sock"
        let config = directory + "/metrics.toml"
        try Data("[metrics]\nsocket = \"\(socket)\"\n".utf8).write(to: URL(fileURLWithPath: config))
        let result = try XCTUnwrap(try runExpectingExit(Self.daemonBinary, daemonArguments(socket: socket, config: config)),
                                   "the daemon started with its metrics on the mask socket's path")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("metrics.socket") && result.output.contains("mask socket's path"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "nothing was bound")
    }

    /// A socket path given by --socket is blamed on --socket, not on the configuration file it overrode; and a model path that
    /// is a folder without config.json is said to be one (not reported as a missing config.json).
    func testAProblemNamesWhereTheValueCameFrom() throws {
        let missing = directory + "/nowhere/mtlsegd.sock"
        let flag = try XCTUnwrap(try runExpectingExit(Self.daemonBinary, daemonArguments(socket: missing) + ["--check-config"]))
        XCTAssertNotEqual(flag.status, 0)
        XCTAssertTrue(flag.output.contains("--socket \(missing): socket.path: the folder"), flag.output)
        var arguments = daemonArguments(socket: directory + "/m.sock") + ["--check-config"]
        arguments[1] = directory  // --model: a folder with no config.json
        let folder = try XCTUnwrap(try runExpectingExit(Self.daemonBinary, arguments))
        XCTAssertNotEqual(folder.status, 0)
        XCTAssertTrue(folder.output.contains("\(directory!): cannot read the model: a folder without config.json"), folder.output)
    }

    /// A daemon that may not change its socket's group says why and what to do, and leaves no socket behind.
    func testASocketGroupThatCannotBeGivenIsAClearError() throws {
        try XCTSkipUnless(getuid() == 0, "needs root to run the daemon as another user")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) missing")
        chmod(directory, 0o777)
        let socket = directory + "/mtlsegd.sock"
        let config = directory + "/group.toml"
        // nobody, in no supplementary group, cannot give its socket root's group.
        try Data("[socket]\ngroup = \"0\"\n".utf8).write(to: URL(fileURLWithPath: config))
        chmod(config, 0o644)
        let result = try XCTUnwrap(try runExpectingExit("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                                                             Self.daemonBinary] + daemonArguments(socket: socket, config: config)),
                                   "the daemon started without the socket group it was told to give")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("socket's group is") && result.output.contains("Group=0"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the half-made socket is removed")
    }
}
