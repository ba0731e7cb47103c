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
}
