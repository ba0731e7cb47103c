import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

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
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            socket.utf8CString.withUnsafeBytes { path.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(path.count - 1))) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        close(fd) // bound, never listening: connect is refused

        let result = try ToolRunner.run(["status", "--socket", socket])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.errors.contains("\(socket): nobody answers: the socket file is likely left by a daemon that stopped"), result.errors)
    }
}
