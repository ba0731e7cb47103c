import Foundation
import XCTest
@testable import MTLSegSocket

/// A listening socket's file: a live one is never taken over, a stale one is, and a socket removes only its own file.
final class SocketFileTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = "/tmp/mtlseg-socketfile-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// True when a client's connect() at `path` is accepted by `listener`.
    private func answers(_ listener: UnixSocket, at path: String) -> Bool {
        guard (try? UnixSocket.connect(to: path)) != nil else { return false }
        return listener.wait(for: Int16(POLLIN), timeout: 5) && listener.acceptClient() != nil
    }

    func testASecondListenerOnALiveSocketIsRefusedAndTheFirstKeepsServing() throws {
        let path = directory + "/live.sock"
        let first = try UnixSocket.listen(at: path, mode: 0o600)
        XCTAssertThrowsError(try UnixSocket.listen(at: path, mode: 0o600)) { error in
            XCTAssertTrue(error is SocketFile.InUse, "\(error)")
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("already serving"), "\(error)")
        }
        XCTAssertTrue(answers(first, at: path), "the first listener's socket file was taken away")
    }

    func testAStaleSocketFileIsReplaced() throws {
        let path = directory + "/stale.sock"
        // A socket whose process is gone: the file stays, nobody accepts (ECONNREFUSED).
        var gone: UnixSocket? = try UnixSocket.listen(at: path, mode: 0o600)
        XCTAssertNotNil(gone)
        gone = nil
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let fresh = try UnixSocket.listen(at: path, mode: 0o600)
        XCTAssertTrue(answers(fresh, at: path))
    }

    func testAFileThatIsNotASocketIsLeftAlone() throws {
        let path = directory + "/plain"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try UnixSocket.listen(at: path, mode: 0o600)) { error in
            XCTAssertTrue("\(error)".contains("not a socket"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "keep me")
    }

    /// The file appears only once the socket listens (bound under a staging name, linked into place): what a client
    /// finds there answers, and nothing else is left in the folder. A path too near sun_path's limit for a staging
    /// name is bound in place and still listens with its mode.
    func testTheFileAppearsListeningAndAloneWithItsMode() throws {
        let path = directory + "/mtlsegd.sock"
        let listener = try UnixSocket.listen(at: path, mode: 0o660)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["mtlsegd.sock"])
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int), 0o660)
        XCTAssertTrue(answers(listener, at: path))

        let long = directory + "/" + String(repeating: "x", count: 107 - directory.utf8.count - 1)
        XCTAssertEqual(long.utf8.count, 107)
        let inPlace = try UnixSocket.listen(at: long, mode: 0o600)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: long)[.posixPermissions] as? Int), 0o600)
        XCTAssertTrue(answers(inPlace, at: long))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).count, 2)
    }

    func testASocketRemovesOnlyTheFileItCreated() throws {
        let path = directory + "/shared.sock"
        let old = try UnixSocket.listen(at: path, mode: 0o600)
        // Someone removed the old file and a new listener now lives at the same path.
        unlink(path)
        let new = try UnixSocket.listen(at: path, mode: 0o600)
        old.removeBoundFile()
        XCTAssertTrue(answers(new, at: path), "the old socket deleted the new one's file")
        new.removeBoundFile()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "its own file is removed")
    }
}
