import Foundation
import MTLSegCore
import MTLSegSocket
import MTLSegWire
import XCTest
@testable import MTLSegDaemon
import MTLSegTestSupport

/// mtlsegd given what could stop it, forge its log, or pass its configuration check and then fail at start
/// (issue #17, classes 1, 2, 5, 6 and 7, through the daemon): the built binary, as systemd runs it.
final class HostileDaemonTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        // Under /tmp, short: socket paths have at most 107 bytes.
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-hostile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/\(name)").path
    }

    // MARK: Class 5: logs that lie

    func testControlCharactersAreEscapedOnTheWayToTheLog() {
        XCTAssertEqual(LogText.escaped("client (x\n<0>forged)"), "client (x\\n<0>forged)")
        XCTAssertEqual(LogText.escaped("a\r\tb\u{1B}[31m\u{7F}\u{85}\u{2028}"), "a\\r\\tb\\u{1B}[31m\\u{7F}\\u{85}\\u{2028}")
        XCTAssertEqual(LogText.escaped("C:\\n is not a newline"), "C:\\\\n is not a newline", "a backslash in the text cannot pass for an escape")
        XCTAssertEqual(LogText.escaped("plain text, café"), "plain text, café")
    }

    func testAForgedClientNameCannotWriteAJournalLine() throws {
        let socket = path("d.sock")
        let daemon = try DaemonProcess(arguments: ["--model", Self.fixture("mtl2-tiny.safetensors"), "--source", "synthetic", "--size", "160x120",
                                                   "--fps", "30", "--socket", socket, "--threads", "1", "--config", try emptyConfig()])
        defer { daemon.stop() }
        try daemon.waitForLine("serving") { $0.contains("serving mtl2-tiny") }
        let client = try WireClient(path: socket, hello: Hello(name: "probe\n<0>forged emergency\r\n<1>and another"))
        _ = try client.next(timeout: 5)
        try daemon.waitForLine("the client's connection") { $0.contains("forged emergency") }
        let lines = daemon.lines
        XCTAssertFalse(lines.contains { $0.hasPrefix("<0>") || $0.hasPrefix("<1>") }, "a forged line: \(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("<6>client") && $0.contains("probe\\n<0>forged emergency\\r\\n<1>and another") }, "\(lines)")
    }

    /// Started without OpenBLAS's settings, the daemon starts itself again with them (BLASEnvironment) through
    /// /proc/self/exe, which the kernel names the process after: it must take back its own name, or `pgrep mtlsegd`,
    /// `top` and the journal's _COMM see "exe".
    func testTheDaemonKeepsItsNameWhenItRestartsForOpenBLAS() throws {
        let socket = path("named.sock")
        let daemon = try DaemonProcess(arguments: ["--model", Self.fixture("mtl2-tiny.safetensors"), "--source", "synthetic", "--size", "160x120",
                                                   "--socket", socket, "--threads", "1", "--config", try emptyConfig()],
                                       unset: ["OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", BLASEnvironment.marker])
        defer { daemon.stop() }
        try daemon.waitForLine("serving") { $0.contains("serving mtl2-tiny") }
        let pid = daemon.process.processIdentifier
        let environment = try String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)
        XCTAssertTrue(environment.contains("\(BLASEnvironment.marker)=1"), "the daemon did not restart itself for OpenBLAS")
        let name = try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)
        XCTAssertEqual(name, "mtlsegd\n")
    }

    /// Out of descriptors (the unit's LimitNOFILE= reached before max_clients), a client waiting to be accepted is still
    /// told so (ERROR server_full, from a descriptor kept in reserve) instead of hanging in the backlog, and the failing
    /// accept is logged once, not ten times a second.
    func testClientsPastTheDescriptorLimitAreToldSoAndTheLogSaysItOnce() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "no prlimit")
        let socket = path("fd.sock")
        // The clients held below read nothing: a long timeout keeps them (a client dropped would free descriptors, and a
        // later failing accept would be logged anew), and max_clients is not what refuses them.
        let config = path("fd.toml")
        try Data("[socket]\nclient_timeout_ms = 600000\nmax_clients = 1024\n".utf8).write(to: URL(fileURLWithPath: config))
        var limit = 40
        let daemon = try DaemonProcess(arguments: ["--model", Self.fixture("mtl2-tiny.safetensors"), "--source", "synthetic", "--size", "160x120",
                                                   "--fps", "10", "--socket", socket, "--threads", "1", "--config", config],
                                       openFiles: limit)
        defer { daemon.stop() }
        try daemon.waitForLine("serving") { $0.contains("serving mtl2-tiny") }
        let atAccept = "server_full: no file descriptors left for the connection"
        let atWakePipe = "server_full: no file descriptors left for the session's wake pipe"
        /// ERROR server_full or a stream: the daemon's answer to a HELLO, or nil if none came.
        func answer(_ client: UnixSocket, _ name: String) throws -> Message? {
            _ = client.writeAll(MessageEncoder.encode(.hello(Hello(name: name))), timeout: 1)
            var decoder = MessageDecoder(limit: 1 << 20), buffer = [UInt8](repeating: 0, count: 4096), reply: Message?
            while reply == nil, let count = client.read(into: &buffer, timeout: 3), count > 0 {
                decoder.append(Array(buffer[0 ..< count]))
                reply = try decoder.next()
            }
            return reply
        }
        // A session takes three descriptors (the connection and its wake pipe's two ends). Accept itself fails, and the
        // reserve is used, only once none is free; with one or two free, accept succeeds and the wake pipe fails,
        // client after client. Which of the two a given limit reaches depends on how many descriptors the daemon holds,
        // so each wake-pipe refusal lowers the limit by one (prlimit on the running daemon) until accept fails.
        var held: [UnixSocket] = [], streams: [UnixSocket] = [], fromReserve = 0, fromWakePipe = 0, others: [String] = []
        for index in 0 ..< 60 where fromReserve < 3 {
            let client = try UnixSocket.connect(to: socket)
            held.append(client)
            switch try answer(client, "fd \(index)") {
            case .stream?: streams.append(client)
            case let .error(error)? where "\(error)".hasPrefix(atAccept): fromReserve += 1
            case let .error(error)? where "\(error)".hasPrefix(atWakePipe):
                fromWakePipe += 1
                limit -= 1
                let lowered = try runProcess("/usr/bin/prlimit", ["--pid", "\(daemon.process.processIdentifier)", "--nofile=\(limit)"])
                XCTAssertEqual(lowered.status, 0, lowered.output)
            case let other: others.append("client \(index): \(other.map { "\($0)" } ?? "no answer")")
            }
        }
        XCTAssertEqual(others, [], "clients left without an answer, or refused otherwise")
        XCTAssertFalse(streams.isEmpty, "no client was served at all (limit \(limit))")
        // Three clients were told from the reserve, so accept failed at least three times.
        XCTAssertEqual(fromReserve, 3, "accept never failed: \(streams.count) served, \(fromWakePipe) refused for want of a wake pipe, limit \(limit)")

        // The log is one pipe, written in order: once a line written after the refusals is in, every "accept failed"
        // line is too. A served client's leaving frees its three descriptors, so a new client is served and logged.
        streams.removeFirst().shutdownBoth()
        let marker = "after the refusals"
        XCTAssertTrue(try eventually(within: 30) {
            let client = try UnixSocket.connect(to: socket)
            held.append(client)
            if case .stream? = try answer(client, marker) { return true }
            return false
        }, "no client was served once descriptors were freed")
        try daemon.waitForLine("the served client") { $0.contains("(\(marker),") && $0.contains("connected") }
        XCTAssertEqual(daemon.lines.filter { $0.contains("accept failed") }.count, 1, "\(daemon.lines.suffix(8))")
        _ = held
    }

    /// --help prints the help and succeeds (it is not a failure to start, logged at <3>).
    func testHelpIsPrintedNotLogged() throws {
        let result = try runProcess(Self.products.appendingPathComponent("mtlsegd").path, ["--help"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.hasPrefix("OVERVIEW: Capture frames"), result.output)
        XCTAssertFalse(result.output.contains("<3>") || result.output.contains("error:"), result.output)
    }

    /// Priorities as "<3>" only where journald reads them; an operator at a terminal reads "error: ".
    func testLogLinesCarryPrioritiesOnlyIntoTheJournal() throws {
        let config = path("typo.toml")
        try "threds = 2\n".write(toFile: config, atomically: true, encoding: .utf8)
        func checkConfig(journalStream: ((Pipe) -> String)?) throws -> String {
            let process = Process()
            process.executableURL = Self.products.appendingPathComponent("mtlsegd")
            process.arguments = ["--check-config", "--config", config]
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            var environment = ProcessInfo.processInfo.environment
            environment["JOURNAL_STREAM"] = journalStream?(pipe)
            process.environment = environment
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 1, output)
            return output
        }
        let message = "\(config): threds: unknown key (did you mean threads?)\n"
        XCTAssertEqual(try checkConfig(journalStream: nil), "error: " + message)
        XCTAssertEqual(try checkConfig(journalStream: DaemonProcess.journalStream), "<3>" + message)
        // Inherited from a parent whose stderr was the journal, while this one's is not.
        XCTAssertEqual(try checkConfig(journalStream: { _ in "1:1" }), "error: " + message)
    }

    func testAConfigurationValueCannotWriteAJournalLineEither() throws {
        let config = path("forged.toml")
        try Data("model = \"/nonexistent\\n<0>forged\"\n[socket]\npath = \"\(path("f.sock"))\"\n".utf8).write(to: URL(fileURLWithPath: config))
        let result = try runProcess(Self.products.appendingPathComponent("mtlsegd").path, ["--check-config", "--config", config])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("/nonexistent\\n<0>forged"), result.output)
        XCTAssertFalse(result.output.split(separator: "\n").contains { $0.hasPrefix("<0>") }, result.output)
    }

    // MARK: Class 6: --check-config checks what start-up checks

    func testCRLFConfigurationsReadAsTheirLFTwins() throws {
        let text = "# written on Windows\nthreads = 3\nmemory_budget_mb = 300\n\n[source]\ndevice = \"synthetic\" # comment\nmax_image_pixels = 1000\n"
        let lf = try DaemonConfig.parse(text)
        XCTAssertEqual(try DaemonConfig.parse(text.replacingOccurrences(of: "\n", with: "\r\n")), lf)
        XCTAssertEqual([lf.threads, lf.memoryBudgetMB, lf.maxImagePixels], [3, 300, 1000])
        XCTAssertEqual(lf.memoryBudget.bytes, 300 << 20)
    }

    func testCheckConfigFailsWhereStartUpWould() throws {
        let model = Self.fixture("mtl2-tiny.safetensors")
        let socketFolder = path("sockets")
        try FileManager.default.createDirectory(atPath: socketFolder, withIntermediateDirectories: true)
        func check(_ text: String, crlf: Bool = false) throws -> (status: Int32, output: String) {
            let config = path("check-\(UUID().uuidString.prefix(6)).toml")
            try Data((crlf ? text.replacingOccurrences(of: "\n", with: "\r\n") : text).utf8).write(to: URL(fileURLWithPath: config))
            return try runProcess(Self.products.appendingPathComponent("mtlsegd").path, ["--check-config", "--config", config, "--model", model])
        }
        let good = "# mtlsegd\n[source]\ndevice = \"synthetic\"\n[socket]\npath = \"\(socketFolder)/m.sock\"\n[metrics]\nsocket = \"\(socketFolder)/metrics.sock\"\n"
        for crlf in [false, true] {
            let result = try check(good, crlf: crlf)
            XCTAssertEqual(result.status, 0, "crlf \(crlf): \(result.output)")
        }
        let long = socketFolder + "/" + String(repeating: "s", count: 120) + ".sock"
        try FileManager.default.createDirectory(atPath: socketFolder + "/taken", withIntermediateDirectories: true)
        let bad: [(String, String, String)] = [
            ("[socket]\npath = \"\(socketFolder)/m.sock\"\ngroup = \"no-such-group-\(UUID().uuidString.prefix(6))\"\n", "socket.group", "no group"),
            ("[socket]\npath = \"\(long)\"\n", "socket.path", "at most 107"),
            ("[socket]\npath = \"\(socketFolder)/missing/m.sock\"\n", "socket.path", "does not exist"),
            ("[socket]\npath = \"\(socketFolder)/taken\"\n", "socket.path", "is a folder"),
            ("[socket]\npath = \"\(socketFolder)/m.sock\"\n[metrics]\nsocket = \"\(socketFolder)/m.sock\"\n", "metrics.socket", "also the mask socket"),
            ("[socket]\npath = \"\(socketFolder)/m.sock\"\n[metrics]\nsocket = \"\(socketFolder)/../sockets/m.sock\"\n", "metrics.socket", "also the mask socket"),
            ("[socket]\npath = \"\(socketFolder)/m.sock\"\n[metrics]\nsocket = \"\(socketFolder)/nowhere/metrics.sock\"\n", "metrics.socket", "does not exist"),
        ]
        for (text, key, reason) in bad {
            let result = try check("[source]\ndevice = \"synthetic\"\n" + text)
            XCTAssertNotEqual(result.status, 0, text)
            XCTAssertTrue(result.output.contains(key) && result.output.contains(reason), "\(text) → \(result.output)")
        }
        // A source that can never be a camera fails the check, as it would fail start-up (not be retried forever).
        let plain = path("plain.txt")
        try Data("x".utf8).write(to: URL(fileURLWithPath: plain))
        let notACamera = try check("[source]\ndevice = \"\(plain)\"\n[socket]\npath = \"\(socketFolder)/m.sock\"\n")
        XCTAssertNotEqual(notACamera.status, 0)
        XCTAssertTrue(notACamera.output.contains("\(plain): not usable as a camera"), notACamera.output)
        // Empty flags are refused as an empty value in the file is.
        for flag in ["--socket", "--source", "--model"] {
            let result = try runProcess(Self.products.appendingPathComponent("mtlsegd").path, ["--check-config", flag, ""])
            XCTAssertNotEqual(result.status, 0, flag)
            XCTAssertTrue(result.output.contains("\(flag) is empty"), result.output)
        }
    }

    /// `--check-config` of a unit's configuration accepts a socket folder that systemd makes when the unit starts
    /// (its RuntimeDirectory), which start-up by hand still requires.
    func testTheUnitsRuntimeDirectoryNeedNotExistWhenItsConfigurationIsChecked() throws {
        var config = DaemonConfig()
        let folder = path("run-not-made-yet/front")
        config.socketPath = folder + "/mtlsegd.sock"
        XCTAssertThrowsError(try config.checkStartup(file: "front.toml")) { XCTAssertTrue("\($0)".contains("does not exist"), "\($0)") }
        XCTAssertNoThrow(try config.checkStartup(file: "front.toml", madeAtStart: [path("run-not-made-yet"), folder]))
    }

    /// What the service's account (the units' User=mtlseg) could not read is found by its mode bits and the places
    /// the unit's sandbox hides, as root checking the configuration would not see it.
    func testTheServiceAccountsAccessIsCheckedByModeAndSandbox() throws {
        // Not under /tmp, which the sandbox hides: beside the built products.
        let folder = Self.products.appendingPathComponent("service-access-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let open = folder + "/open.safetensors", closed = folder + "/closed.safetensors", locked = folder + "/locked"
        for file in [open, closed] { try Data("x".utf8).write(to: URL(fileURLWithPath: file)) }
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: locked + "/model.safetensors"))
        chmod(open, 0o644)
        chmod(closed, 0o600)
        chmod(locked, 0o700)
        // An account that owns none of these files and shares none of their groups.
        let stranger = ServiceAccount(uid: 54321, groups: [54321])
        XCTAssertNil(stranger.cannotRead(open))
        XCTAssertTrue(stranger.cannotRead(closed)?.contains("may not read it") == true, "\(stranger.cannotRead(closed) ?? "readable")")
        XCTAssertTrue(stranger.cannotRead(locked + "/model.safetensors")?.contains("may not pass through \(locked)") == true)
        XCTAssertTrue(stranger.cannotRead(directory.path)?.contains("PrivateTmp=yes") == true, "\(directory.path) lies under /tmp")
        // The owner, or a member of the file's group where the group may read, can.
        var info = stat()
        stat(closed, &info)
        XCTAssertNil(ServiceAccount(uid: info.st_uid, groups: []).cannotRead(closed))
        chmod(closed, 0o640)
        XCTAssertNil(ServiceAccount(uid: 54321, groups: [info.st_gid]).cannotRead(closed))
    }

    /// A configuration named by a FIFO (or a folder) is refused at once: opening a FIFO for reading used to wait for
    /// a writer, so start-up, `--check-config` and every reload hung.
    func testAConfigurationThatIsNotAFileIsRefusedAtOnce() throws {
        let fifo = path("fifo.toml")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let folder = path("folder.toml")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (file, reason) in [(fifo, "not a regular file"), (folder, "is a folder")] {
            let done = DispatchSemaphore(value: 0)
            let message = ThreadOutcome()
            Thread {
                do { _ = try DaemonConfig.load(path: file) } catch { message.text = "\(error)" }
                done.signal()
            }.start()
            XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "reading \(file) did not return within 10 s")
            XCTAssertTrue(message.text.contains(file) && message.text.contains(reason), message.text)
        }
    }

    // MARK: Classes 1, 2, 7 through SIGHUP: a reload storm

    /// Good models alternate with a model of every bad class, each installed by SIGHUP. After every bad one,
    /// a new client is still served the last good model; after every good one, the daemon switched to it. The
    /// daemon's resident memory after the last round is within a few MiB of its size after the first.
    func testAReloadStormOntoEveryBadClassKeepsServingTheLastGoodModelWithFlatRSS() throws {
        let bad = try badModels()
        let good = [("mtl3-tiny", Self.fixture("mtl3-tiny.safetensors")), ("mtl2-tiny", Self.fixture("mtl2-tiny.safetensors"))]
        let config = path("storm.toml"), socket = path("s.sock")
        func install(_ model: String) throws {
            let text = "model = \"\(model)\"\nthreads = 1\nmemory_budget_mb = 256\n[source]\ndevice = \"synthetic\"\nwidth = 160\nheight = 120\nfps = 30\n"
                + "[socket]\npath = \"\(socket)\"\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: config), options: .atomic)
        }
        try install(good[1].1)
        let daemon = try DaemonProcess(arguments: ["--config", config])
        defer { daemon.stop() }
        try daemon.waitForLine("serving") { $0.contains("serving mtl2-tiny") }

        let rounds = 3
        var afterFirstRound = 0
        var reloaded = 0, failed = 0
        for round in 0 ..< rounds {
            for (index, (name, model)) in bad.enumerated() {
                let (goodName, goodModel) = good[(round * bad.count + index) % 2]
                try install(goodModel)
                daemon.hangUp()
                reloaded += 1
                try daemon.waitForLine("reload \(reloaded) onto \(goodName)", count: reloaded) { $0.contains("reloaded: now serving") }
                XCTAssertTrue(daemon.lines.last { $0.contains("reloaded: now serving") }?.contains(goodName) ?? false)

                try install(model)
                daemon.hangUp()
                failed += 1
                try daemon.waitForLine("the failed reload onto \(name)", count: failed) { $0.contains("reload failed") }
                XCTAssertTrue(daemon.process.isRunning, "the daemon died on \(name)")
                let client = try WireClient(path: socket, hello: Hello(name: "storm"))
                XCTAssertEqual(client.stream.model.name, goodName, "after \(name)")
                guard case .frame = try client.next(timeout: 10) else { return XCTFail("no frame after \(name)") }
            }
            if round == 0 { afterFirstRound = daemon.residentKilobytes }
        }
        let last = daemon.residentKilobytes
        print("reload storm: \(rounds) rounds of \(bad.count) bad and \(bad.count) good models; RSS \(afterFirstRound) kB after the first, \(last) kB after the last")
        if !Sanitizer.keepsFreedMemory {  // built with AddressSanitizer, RSS is no measure (printed above)
            XCTAssertLessThan(last - afterFirstRound, 8 * 1024, "RSS \(afterFirstRound) kB → \(last) kB")
        }
        // Each refusal names what was wrong.
        let failures = daemon.lines.filter { $0.contains("reload failed") }
        for expected in ["num_labels", "memory budget", "finite", "variance", "weight_scale", "tasks[0].name", "not a regular file", "pass the end"] {
            XCTAssertTrue(failures.contains { $0.contains(expected) }, "no failure mentions \(expected): \(failures.prefix(12))")
        }
    }

    // MARK: Helpers

    private func emptyConfig() throws -> String {
        let config = path("empty.toml")
        try Data("# the defaults\n".utf8).write(to: URL(fileURLWithPath: config))
        return config
    }

    /// One model of each bad class, named.
    private func badModels() throws -> [(String, String)] {
        var models: [(String, String)] = []
        // An HF checkpoint whose config.json says num_labels = 1e30 (trapped in a Range).
        let checkpoint = path("hf")
        try FileManager.default.copyItem(atPath: Self.fixture("segformer-tiny-hf"), toPath: checkpoint)
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: checkpoint + "/config.json"))) as? [String: Any])
        config.removeValue(forKey: "id2label")
        config.removeValue(forKey: "label2id")
        let json = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
        try Data((json.dropLast() + ",\"num_labels\":1e30}").utf8).write(to: URL(fileURLWithPath: checkpoint + "/config.json"))
        models.append(("num_labels 1e30", checkpoint))
        models.append(("input 16384x16384", try rewrite("input.safetensors", describe: { $0["input"] = ["width": 16384, "height": 16384] })))
        models.append(("a NaN weight", try rewrite("nan.safetensors", tensor: "segformer.encoder.block.0.0.mlp.dense1.weight", value: .nan)))
        models.append(("a negative variance", try rewrite("variance.safetensors", tensor: "decode_head.batch_norm.running_var", value: -1)))
        models.append(("an int8 scale of 0", try rewrite("scale.safetensors", int8ScaleOf: 0)))
        models.append(("task name ../x", try rewrite("task.safetensors", describe: {
            var tasks = $0["tasks"] as! [[String: Any]]
            tasks[1]["name"] = "../x"
            tasks.swapAt(0, 1)
            $0["tasks"] = tasks
        })))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.fixture("mtl2-tiny.safetensors")))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path("truncated.safetensors")))
        models.append(("a truncated file", path("truncated.safetensors")))
        XCTAssertEqual(mkfifo(path("fifo.safetensors"), 0o644), 0)
        models.append(("a FIFO", path("fifo.safetensors")))
        return models
    }

    /// The 2-task fixture rewritten: its description through `describe`, one tensor's value 1, or the first
    /// query projection stored as int8 with every scale `int8ScaleOf`.
    private func rewrite(_ name: String, describe: (inout [String: Any]) -> Void = { _ in }, tensor: String? = nil, value: Float = 0,
                         int8ScaleOf scale: Float? = nil) throws -> String {
        let original = try SafeTensorsFile(path: Self.fixture("mtl2-tiny.safetensors"))
        var description = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(original.metadata["mtlseg"]!.utf8)) as? [String: Any])
        describe(&description)
        var writer = SafeTensorsWriter()
        writer.metadata = ["mtlseg": String(decoding: try JSONSerialization.data(withJSONObject: description), as: UTF8.self)]
        let query = "segformer.encoder.block.0.0.attention.self.query"
        for entry in original.entries {
            var values = try original.floats(entry).array
            if entry.name == tensor {
                values[1] = value
                writer.add(entry.name, shape: entry.shape, floats: values)
            } else if let scale, entry.name == query + ".weight" {
                writer.add(entry.name, dtype: .I8, shape: entry.shape, bytes: Data(values.map { UInt8(bitPattern: Int8(clamping: Int($0 * 100))) }))
                writer.add(query + ".weight_scale", shape: [entry.shape[0]], floats: Array(repeating: scale, count: entry.shape[0]))
            } else {
                writer.add(entry.name, dtype: entry.dtype, shape: entry.shape, bytes: original.rawBytes(entry))
            }
        }
        try writer.write(to: path(name))
        return path(name)
    }

    /// The build's products directory (where this test bundle and mtlsegd are).
    static var products: URL {
        var url = Bundle(for: HostileDaemonTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url
    }
}

/// The built mtlsegd running as under systemd (its stderr is the "journal": JOURNAL_STREAM names it, so lines
/// carry their priority as "<6>"), its standard error collected line by line.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var _lines: [String] = []
    private var partial = Data()

    /// The built mtlsegd with `arguments`, in this process's environment less the variables `unset`, and with at most
    /// `openFiles` descriptors where given (started through prlimit, which execs it: the pid is the daemon's).
    init(arguments: [String], unset: [String] = [], openFiles: Int? = nil) throws {
        let daemon = HostileDaemonTests.products.appendingPathComponent("mtlsegd")
        if let openFiles {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(openFiles)", daemon.path] + arguments
        } else {
            process.executableURL = daemon
            process.arguments = arguments
        }
        let pipe = Pipe()
        process.standardError = pipe
        process.environment = ProcessInfo.processInfo.environment.merging(["JOURNAL_STREAM": Self.journalStream(pipe)]) { $1 }
            .filter { !unset.contains($0.key) }
        process.standardOutput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in self?.append(handle.availableData) }
        try process.run()
    }

    private func append(_ data: Data) {
        lock.lock()
        defer { lock.unlock() }
        partial.append(data)
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            _lines.append(String(decoding: partial[partial.startIndex ..< newline], as: UTF8.self))
            partial = Data(partial[(newline + 1)...])
        }
    }

    var lines: [String] { lock.lock(); defer { lock.unlock() }; return _lines }

    /// What systemd sets JOURNAL_STREAM to for a stream: "device:inode" of the pipe's writing end.
    static func journalStream(_ pipe: Pipe) -> String {
        var status = stat()
        _ = fstat(pipe.fileHandleForWriting.fileDescriptor, &status)
        return "\(status.st_dev):\(status.st_ino)"
    }

    /// Waits until `count` lines satisfy `condition`, failing after 30 s or if the daemon exits.
    func waitForLine(_ what: String, count: Int = 1, condition: (String) -> Bool) throws {
        let deadline = Date().addingTimeInterval(30)
        while lines.filter(condition).count < count {
            guard process.isRunning else { throw Failure("the daemon exited waiting for \(what): \(lines.suffix(5))") }
            guard Date() < deadline else { throw Failure("timed out waiting for \(what): \(lines.suffix(5))") }
            usleep(10_000)
        }
    }

    func hangUp() { kill(process.processIdentifier, SIGHUP) }

    var residentKilobytes: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// The installed configuration as this host can start it, for `--check-config` (which checks what start-up
/// checks): the unit's RuntimeDirectory (/run/mtlseg) exists only once systemd starts the unit, and the socket
/// group only once sysusers has run, so the copy written into `folder` puts the socket there and, where the
/// group is missing on this host, names the current user's group instead.
func hostRunnableConfig(_ config: String, folder: String) throws -> String {
    var text = try String(contentsOfFile: config, encoding: .utf8)
    text = text.replacingOccurrences(of: "\"/run/mtlseg/", with: "\"\(folder)/")
    if let match = text.range(of: #"group = "([^"]*)""#, options: .regularExpression) {
        let group = String(text[match].dropFirst("group = \"".count).dropLast())
        if getgrnam(group) == nil, let own = getgrgid(getgid()) {
            text.replaceSubrange(match, with: "group = \"\(String(cString: own.pointee.gr_name))\"")
        }
    }
    let copy = (folder as NSString).appendingPathComponent("host-\(UUID().uuidString.prefix(6)).toml")
    try Data(text.utf8).write(to: URL(fileURLWithPath: copy))
    return copy
}

/// What a helper thread found, read after the semaphore it signals (which orders the write before the read).
private final class ThreadOutcome: @unchecked Sendable {
    var text = ""
}
