import Foundation
import XCTest
@testable import MTLSegDaemon

/// One camera's daemon among several (`mtlsegd --instance NAME`, mtlsegd@NAME.service): where its configuration
/// and sockets are, what its file may and may not say, and how `mtlseg status` finds every daemon.
final class DaemonInstanceTests: XCTestCase {
    private var directory: URL!
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlseg-instance-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("etc"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("run"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func instance(_ name: String) throws -> DaemonInstance {
        try DaemonInstance(name: name, configurationDirectory: directory.appendingPathComponent("etc").path,
                           runtimeParent: directory.appendingPathComponent("run").path)
    }

    private func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: directory.appendingPathComponent("etc/\(name).toml"))
    }

    private func problem(_ body: () throws -> Any) -> DaemonConfig.Problem? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? DaemonConfig.Problem
        }
    }

    func testNamesThatCouldLeaveTheirFolderAreRefused() {
        for name in ["front", "rear-left", "cam_2", "boom.3", String(repeating: "a", count: 64)] {
            XCTAssertNil(problem { try DaemonInstance(name: name) }, name)
        }
        for name in ["", "../etc", "a/b", ".hidden", "front cam", "caméra", "x\n", String(repeating: "a", count: 65)] {
            XCTAssertEqual(problem { try DaemonInstance(name: name) }?.key, "(name)", name.debugDescription)
        }
        // It would read mtlsegd.service's configuration, whose socket is the single service's.
        XCTAssertTrue(problem { try DaemonInstance(name: "mtlsegd") }?.reason.contains("mtlsegd.service") ?? false)
    }

    func testTheFileGoesOverTheInstancesOwnDefaults() throws {
        let front = try instance("front")
        try write("front", "[source]\ndevice = \"/dev/v4l/by-id/usb-Cam_A-video-index0\"\n")
        let config = try front.load()
        XCTAssertEqual(config.socketPath, directory.appendingPathComponent("run/front/mtlsegd.sock").path)
        XCTAssertEqual(config.threads, 1, "cameras share the cores: one thread each unless the file says more")
        XCTAssertEqual(config.source, "/dev/v4l/by-id/usb-Cam_A-video-index0")
        XCTAssertNil(config.metricsSocket)

        try write("front", "threads = 2\n[metrics]\nsocket = \"\(front.runtimeDirectory)/metrics.sock\"\n")
        let more = try front.load()
        XCTAssertEqual(more.threads, 2)
        XCTAssertEqual(more.metricsSocket, front.runtimeDirectory + "/metrics.sock")
        // Two instances never share a socket.
        XCTAssertNotEqual(try instance("rear").socketPath, front.socketPath)
    }

    func testAnInstanceWithoutItsOwnFileDoesNotStart() throws {
        let missing = problem { try self.instance("rear").load() }
        XCTAssertEqual(missing?.key, "(file)")
        XCTAssertTrue(missing?.file.hasSuffix("etc/rear.toml") ?? false, "\(String(describing: missing))")
        XCTAssertTrue(missing?.reason.contains("camera.toml") ?? false, "says where to start from: \(String(describing: missing))")
    }

    func testSocketsOutsideTheInstancesDirectoryAreRefused() throws {
        let front = try instance("front")
        // A path copied from the single service's file, or from another camera's.
        try write("front", "[socket]\npath = \"/run/mtlseg/mtlsegd.sock\"\n")
        let single = problem { try front.load() }
        XCTAssertEqual(single?.key, "socket.path")
        XCTAssertTrue(single?.reason.contains(front.socketPath) ?? false, "says what to use instead: \(String(describing: single))")
        try write("front", "[socket]\npath = \"\(directory.path)/run/rear/mtlsegd.sock\"\n")
        XCTAssertEqual(problem { try front.load() }?.key, "socket.path")
        try write("front", "[metrics]\nsocket = \"/run/mtlseg/metrics.sock\"\n")
        XCTAssertEqual(problem { try front.load() }?.key, "metrics.socket")
        // Inside its own directory, any name will do.
        try write("front", "[socket]\npath = \"\(front.runtimeDirectory)/masks.sock\"\n")
        XCTAssertEqual(try front.load().socketPath, front.runtimeDirectory + "/masks.sock")
    }

    /// The shipped example is a valid instance configuration once copied, and its advice on threads holds.
    func testTheShippedCameraConfigurationLoadsAsAnInstance() throws {
        let example = try String(contentsOf: Self.repository.appendingPathComponent("systemd/camera.toml"), encoding: .utf8)
        try write("boom-left", example)
        let config = try instance("boom-left").load()
        XCTAssertEqual(config.threads, 1)
        XCTAssertTrue(config.source.hasPrefix("/dev/v4l/by-id/"), config.source)
        XCTAssertEqual(config.socketGroup, "mtlseg-clients")
        XCTAssertEqual(config.socketPath, try instance("boom-left").socketPath)
    }

    func testRunningSocketsFindsTheSingleServiceAndEveryCamera() throws {
        let run = directory.appendingPathComponent("run").path
        for folder in ["front", "rear", "empty"] { try FileManager.default.createDirectory(atPath: run + "/" + folder, withIntermediateDirectories: true) }
        let sockets = try [run + "/mtlsegd.sock", run + "/rear/mtlsegd.sock", run + "/front/mtlsegd.sock", run + "/front/metrics.sock"]
            .map { try BoundSocket(path: $0) }
        defer { sockets.forEach { $0.close() } }
        // A regular file where a socket would be is no daemon.
        try Data().write(to: URL(fileURLWithPath: run + "/empty/mtlsegd.sock"))
        XCTAssertEqual(DaemonInstance.runningSockets(runtimeParent: run),
                       [run + "/mtlsegd.sock", run + "/front/mtlsegd.sock", run + "/rear/mtlsegd.sock"])
        XCTAssertEqual(DaemonInstance.runningSockets(runtimeParent: run + "/nothing-here"), [])
    }

    func testThreadsBeyondTheAllowedCPUsAreNamed() {
        XCTAssertEqual(CPUPlacement.count(cpuList: "\t0-3,6\n"), 5)
        XCTAssertEqual(CPUPlacement.count(cpuList: "1"), 1)
        XCTAssertNil(CPUPlacement.count(cpuList: "3-1"))
        XCTAssertNil(CPUPlacement.count(cpuList: "x"))
        XCTAssertNotNil(CPUPlacement.allowedCPUs(), "this process's Cpus_allowed_list")
        XCTAssertNil(CPUPlacement.oversubscription(threads: 1, allowed: 1))
        XCTAssertNil(CPUPlacement.oversubscription(threads: 2, allowed: nil))
        let warning = CPUPlacement.oversubscription(threads: 2, allowed: 1)
        XCTAssertTrue(warning?.contains("threads = 2") == true && warning?.contains("at most 1") == true, warning ?? "nil")
    }
}

/// A Unix socket bound at a path, standing in for a daemon's.
private struct BoundSocket {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func close() { Glibc.close(fd) }
}
