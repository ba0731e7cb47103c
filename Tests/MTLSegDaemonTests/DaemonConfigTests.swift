import XCTest
@testable import MTLSegDaemon

final class DaemonConfigTests: XCTestCase {
    func testAFullFile() throws {
        let config = try DaemonConfig.parse("""
            model = "/var/lib/mtlseg/crops.safetensors"
            threads = 4
            [source]
            device = "/dev/video2"
            width = 1280
            height = 720
            fps = 10
            [socket]
            path = "/run/x.sock"
            mode = "0600"
            allow_uids = [1000]
            allow_gids = [44]
            max_clients = 3
            client_timeout_ms = 750
            mask_memory_mb = 200
            """)
        XCTAssertEqual(config.model, "/var/lib/mtlseg/crops.safetensors")
        XCTAssertEqual(config.threads, 4)
        XCTAssertEqual(config.source, "/dev/video2")
        XCTAssertEqual([config.width, config.height], [1280, 720])
        XCTAssertEqual(config.fps, 10)
        XCTAssertEqual(config.socketMode, 0o600)
        XCTAssertEqual(config.allowUIDs, [1000])
        XCTAssertEqual(config.allowGIDs, [44])
        XCTAssertEqual(config.maxClients, 3)
        XCTAssertEqual(config.clientTimeout, 0.75)
        XCTAssertEqual(config.maskMemoryMB, 200)
    }

    func testEmptyFileKeepsTheDefaults() throws {
        XCTAssertEqual(try DaemonConfig.parse(""), DaemonConfig())
    }

    func testErrorsNameTheKey() {
        func problem(_ text: String) -> DaemonConfig.Problem? {
            do {
                _ = try DaemonConfig.parse(text, file: "test.toml")
                return nil
            } catch {
                return error as? DaemonConfig.Problem
            }
        }
        XCTAssertEqual(problem("modell = \"x\"")?.key, "modell")
        XCTAssertEqual(problem("[source]\nfsp = 3")?.key, "source.fsp")
        XCTAssertEqual(problem("threads = \"two\"")?.key, "threads")
        XCTAssertEqual(problem("threads = 0")?.key, "threads")
        XCTAssertEqual(problem("[socket]\nmode = \"rw\"")?.key, "socket.mode")
        XCTAssertEqual(problem("[socket]\nallow_uids = [-1]")?.key, "socket.allow_uids")
        XCTAssertEqual(problem("[socket]\nmask_memory_mb = 0")?.key, "socket.mask_memory_mb")
        XCTAssertEqual(problem("source = 3")?.key, "source")
        // The metrics socket on the mask socket's path would replace (or be refused by) the mask socket.
        XCTAssertEqual(problem("[socket]\npath = \"/run/m/a.sock\"\n[metrics]\nsocket = \"/run/m//a.sock\"")?.key, "metrics.socket")
        XCTAssertEqual(problem("[metrics]\nsocket = \"/run/mtlseg/mtlsegd.sock\"")?.key, "metrics.socket", "the default mask socket path counts too")
        XCTAssertNil(problem("[metrics]\nsocket = \"/run/mtlseg/metrics.sock\""))
        XCTAssertEqual(problem("threads = ")?.key, "(syntax)")
        XCTAssertEqual(problem("threads = ")?.file, "test.toml")
        // Found by fuzzing: the TOML parser used to abort the process on this.
        XCTAssertEqual(problem("threads = 2\n[\u{FFFD}ource]\ndevice = \"x\"")?.key, "(syntax)")
        XCTAssertTrue(problem("threads = 2\n[{oue = ads = 2\n")?.reason.hasPrefix("line 2:") ?? false)
        XCTAssertNil(problem("# café\nmodel = \"/m/é.safetensors\"\n[source]\ndevice = '/dev/vidéo'\n"), "non-ASCII in strings and comments is fine")
    }

    /// An array may go over several lines, with comments (a long allow-list), and a byte order mark may come first;
    /// what mtlsegd does not read of TOML is named as such, with the line.
    func testMultiLineArraysAndAByteOrderMarkAreRead() throws {
        let text = "\u{FEFF}threads = 2\n[socket]\nallow_uids = [\n  0,      # root\n  1000,   # the operator, [not a table]\n]\n"
            + "allow_gids = [ 5,\n 6 ]  # two\nmode = \"0660\"  # '[' in a comment\n"
        let config = try DaemonConfig.parse(text, file: "test.toml")
        XCTAssertEqual(config.threads, 2)
        XCTAssertEqual(config.allowUIDs, [0, 1000])
        XCTAssertEqual(config.allowGIDs, [5, 6])
        for (bad, line) in [("threads = 2\n[socket]\nallow_uids = [\n 0,\n", 3), ("[socket]\nallow_uids = [\n \"a\" = 1,\n]\n", 2),
                            ("threads = 1\nsource.fps = 3\n", 2)] {
            XCTAssertThrowsError(try DaemonConfig.parse(bad, file: "test.toml"), bad) { error in
                let reason = (error as? DaemonConfig.Problem)?.reason ?? "\(error)"
                XCTAssertTrue(reason.hasPrefix("line \(line): expected `key = value`") && reason.contains("mtlsegd reads that much of TOML"),
                              "\(bad.debugDescription): \(reason)")
            }
        }
    }

    /// An unknown key's error says what was meant: the key a typo was of, the table a key belongs in, or what the table takes.
    func testUnknownKeysAreAnsweredWithTheKeyMeant() {
        func reason(_ text: String) -> String? {
            do {
                _ = try DaemonConfig.parse(text, file: "test.toml")
                return nil
            } catch {
                return (error as? DaemonConfig.Problem)?.reason
            }
        }
        XCTAssertEqual(reason("threds = 2"), "unknown key (did you mean threads?)")
        XCTAssertEqual(reason("[source]\nfsp = 3"), "unknown key (did you mean source.fps?)", "two neighbours swapped")
        XCTAssertEqual(reason("[socket]\nmax_client = 3"), "unknown key (did you mean socket.max_clients?)")
        XCTAssertEqual(reason("sorce = 1"), "unknown key (did you mean [source]?)")
        // A table's key above every `[table]` line, and the top level's under one.
        XCTAssertEqual(reason("model = \"/m.safetensors\"\nwidth = 640\n[source]\nfps = 5"),
                       "unknown key here: it belongs in [source] (write it after a `[source]` line)")
        XCTAssertEqual(reason("[socket]\npath = \"/run/x.sock\"\nthreads = 2"),
                       "unknown key here: it belongs at the top level, before the first `[table]` line")
        // Between tables a name means something else (`[metrics] path` is not the mask socket's): the table's keys.
        XCTAssertEqual(reason("[metrics]\npath = \"/run/m.sock\""), "unknown key; [metrics] takes socket")
        XCTAssertEqual(reason("colour = 1"), "unknown key; the top level takes model, threads, memory_budget_mb, [source], [socket], [metrics]")
        // Every table read, present or not, changes nothing that the file does not set.
        XCTAssertEqual(try DaemonConfig.parse("[metrics]\n", over: DaemonConfig.parse("[metrics]\nsocket = \"/run/m.sock\"")).metricsSocket,
                       "/run/m.sock")
    }
}
