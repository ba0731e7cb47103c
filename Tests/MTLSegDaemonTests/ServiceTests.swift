import Foundation
import MTLSegDaemon
import MTLSegEssentials
import MTLSegWire
import XCTest
import MTLSegTestSupport

/// mtlsegd as systemd runs it: the built binary, the unit file, the install script.
final class ServiceTests: XCTestCase {
    private var directory: URL!
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build's products directory (where this test bundle and mtlsegd are).
    private static var products: URL {
        var url = Bundle(for: ServiceTests.self).bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        return url
    }

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-service-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }


    func testReadyComesOnlyOnceClientsCanConnectAndTermStopsCleanly() throws {
        let notify = try NotifySocket(path: directory.appendingPathComponent("notify").path)
        let socket = directory.appendingPathComponent("mtlsegd.sock").path
        let model = Self.repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
        let config = directory.appendingPathComponent("empty.toml")
        try Data("# the defaults\n".utf8).write(to: config)
        let daemon = Process()
        daemon.executableURL = Self.products.appendingPathComponent("mtlsegd")
        daemon.arguments = ["--model", model, "--source", "synthetic", "--size", "160x120", "--fps", "30", "--socket", socket, "--threads", "1",
                            "--config", config.path]
        daemon.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        var ready = false
        let deadline = Date().addingTimeInterval(30)
        while !ready && Date() < deadline, let message = notify.receive(timeout: 30) {
            ready = message.split(separator: "\n").contains("READY=1")
        }
        XCTAssertTrue(ready, "no READY=1")
        // At the moment READY=1 arrives, the socket already takes clients.
        let client = try WireClient(path: socket, hello: Hello(name: "ready check"))
        guard case .frame = try client.next(timeout: 5) else { return XCTFail("no frame after READY") }
        daemon.terminate()  // SIGTERM
        // How fast it stops is the machine's business; a deadline far past any stop catches one that waits forever
        // (systemd would kill it after TimeoutStopSec=, and the exit status below would not be 0).
        let stopped = eventually(within: 30) { !daemon.isRunning }
        if !stopped { kill(daemon.processIdentifier, SIGKILL) }
        daemon.waitUntilExit()
        XCTAssertTrue(stopped, "still running 30 s after SIGTERM")
        XCTAssertEqual(daemon.terminationStatus, 0)
        // Sent before it exited: already waiting in the socket.
        XCTAssertTrue(notify.collect(until: { $0.contains { $0.contains("STOPPING=1") } }, within: 2).contains { $0.contains("STOPPING=1") },
                      "STOPPING=1 before exit")
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the socket file is removed")
    }

    /// The unit (or the per-camera template, "mtlsegd@.service") with ExecStart pointing at the binary this
    /// build made (verify checks that it exists).
    private func unitUnderTest(_ name: String = "mtlsegd.service") throws -> String {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
        let path = directory.appendingPathComponent(name).path
        try text.replacingOccurrences(of: "/usr/bin/mtlsegd", with: Self.products.appendingPathComponent("mtlsegd").path)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTheUnitVerifiesWithoutAWord() throws {
        // systemd-analyze only warns (rc 0) on unknown keys and bad values, so any output is a failure.
        for name in ["mtlsegd.service", "mtlsegd@.service"] {
            let result = try runProcess("/usr/bin/systemd-analyze", ["verify", try unitUnderTest(name)])
            XCTAssertEqual(result.status, 0, name)
            XCTAssertEqual(result.output, "", "\(name): \(result.output)")
        }
    }

    func testTheUnitIsHardened() throws {
        for name in ["mtlsegd.service", "mtlsegd@.service"] {
            let result = try runProcess("/usr/bin/systemd-analyze", ["security", "--offline=true", try unitUnderTest(name)])
            let line = try XCTUnwrap(result.output.split(separator: "\n").first { $0.contains("Overall exposure level") }, result.output)
            // "→ Overall exposure level for mtlsegd.service: 0.6 SAFE 😀"; where systemd prints no emoji (TERM=dumb,
            // a non-UTF-8 locale) the face is ":-}", so take the first word after the unit name's colon.
            let verdict = try XCTUnwrap(line.range(of: ".service: "), String(line))
            let score = try XCTUnwrap(line[verdict.upperBound...].split(separator: " ").first.flatMap { Double($0) }, String(line))
            XCTAssertLessThanOrEqual(score, 1.0, String(line))
            print("\(name): \(line)")
            // Camera access stays possible.
            let unit = try String(contentsOfFile: try unitUnderTest(name), encoding: .utf8)
            XCTAssertTrue(unit.contains("DeviceAllow=char-video4linux rw") && unit.contains("SupplementaryGroups=video"), name)
        }
    }

    /// The template differs from the single unit only where one camera among several must: its ExecStart, its runtime
    /// directory and the words of comments. Every other line (limits, sandbox, restarts) is the single unit's.
    func testTheTemplateIsTheSingleUnitPerCamera() throws {
        func settings(_ name: String) throws -> [String] {
            try String(contentsOfFile: try unitUnderTest(name), encoding: .utf8).split(separator: "\n")
                .filter { !$0.hasPrefix("#") && !$0.hasPrefix("Description=") }.map(String.init)
        }
        let single = try settings("mtlsegd.service"), template = try settings("mtlsegd@.service")
        let onlySingle = single.filter { !template.contains($0) }, onlyTemplate = template.filter { !single.contains($0) }
        XCTAssertEqual(onlySingle.map { $0.split(separator: "=")[0] }, ["ExecStart", "RuntimeDirectory", "RuntimeDirectoryPreserve"], "\(onlySingle)")
        XCTAssertEqual(onlyTemplate.map { $0.split(separator: "=")[0] }, ["ExecStart", "RuntimeDirectory"], "\(onlyTemplate)")
        // Each camera's files in a directory of its own, inside the single service's (which it must then keep
        // when it stops: systemd removes a stopped unit's RuntimeDirectory with all that is in it).
        XCTAssertTrue(template.contains("RuntimeDirectory=mtlseg/%i"))
        XCTAssertTrue(template.contains { $0.hasPrefix("ExecStart=") && $0.hasSuffix(" --instance %i") })
        XCTAssertTrue(single.contains("RuntimeDirectory=mtlseg") && single.contains("RuntimeDirectoryPreserve=yes"))
        XCTAssertFalse(template.contains { $0.hasPrefix("RuntimeDirectoryPreserve=") }, "a stopped camera's directory goes with it")
        // The socket and configuration --instance derives are where the unit lets the daemon reach them.
        let instance = try DaemonInstance(name: "front")
        XCTAssertEqual(instance.socketPath, "/run/mtlseg/front/mtlsegd.sock")
        XCTAssertEqual(instance.configurationPath, "/etc/mtlseg/front.toml")
    }

    /// Inside the unit's sandbox chown is refused (SystemCallFilter=~@privileged), so the socket must get the configured
    /// group from the service's own group; and in a private user namespace that group (and every peer) would be unmapped.
    func testTheShippedSocketGroupIsTheServicesGroup() throws {
        let unit = try String(contentsOfFile: try unitUnderTest(), encoding: .utf8)
        let config = try DaemonConfig.load(path: Self.repository.appendingPathComponent("systemd/mtlsegd.toml").path)
        let group = try XCTUnwrap(config.socketGroup, "the shipped configuration names no socket group")
        XCTAssertTrue(unit.split(separator: "\n").contains("Group=\(group)"), "the unit's Group= is not \(group)")
        XCTAssertTrue(unit.contains("SystemCallFilter=~@privileged"), "the premise: chown is refused in the sandbox")
        XCTAssertFalse(unit.split(separator: "\n").contains { $0.hasPrefix("PrivateUsers=") && !$0.hasSuffix("=no") })
    }

    func testInstallLaysOutEveryFileWhereTheUnitExpectsIt() throws {
        let destination = directory.appendingPathComponent("root")
        let model = Self.repository.appendingPathComponent("Tests/MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
        var environment = ["DESTDIR": destination.path, "MTLSEG_BIN_DIR": Self.products.path, "DEMO_MODEL": model]
        // The manual pages and completions take a release build of generate-manual (systemd/make-manual.sh): under
        // qemu-user that is an emulated Swift build in a folder of its own, whose packages the chroot cannot fetch
        // (as DebianPackageTests, skipped there). There they are left out and not checked.
        let emulated = ProcessInfo.processInfo.environment["MTLSEG_EMULATED"] != nil
        if emulated { environment["MTLSEG_NO_MANUAL"] = "1" }
        let script = Self.repository.appendingPathComponent("systemd/install.sh").path
        let first = try runProcess("/bin/bash", [script], environment: environment)
        XCTAssertEqual(first.status, 0, first.output)
        let again = try runProcess("/bin/bash", [script], environment: environment)
        XCTAssertEqual(again.status, 0, "idempotent: \(again.output)")
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: destination.path + path) }
        let unit = try String(contentsOfFile: destination.path + "/usr/lib/systemd/system/mtlsegd.service", encoding: .utf8)
        // ExecStart's binary and config, and the model the config names, are where the unit and config say.
        let execStart = try XCTUnwrap(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let words = execStart.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
        XCTAssertTrue(exists(words[0]), words[0])
        XCTAssertTrue(exists(words[words.firstIndex(of: "--config")! + 1]))
        XCTAssertTrue(exists("/usr/bin/mtlseg"))
        XCTAssertTrue(exists("/usr/lib/sysusers.d/mtlseg.conf") && exists("/usr/lib/tmpfiles.d/mtlseg.conf"))
        XCTAssertTrue(exists("/var/lib/mtlseg/model.safetensors"))
        let config = try String(contentsOfFile: destination.path + "/etc/mtlseg/mtlsegd.toml", encoding: .utf8)
        XCTAssertTrue(config.contains("model = \"/var/lib/mtlseg/model.safetensors\""))
        XCTAssertTrue(config.contains("path = \"/run/mtlseg/mtlsegd.sock\"") && unit.contains("RuntimeDirectory=mtlseg"))
        // The per-camera template, and the example configuration its instances start from.
        let template = try String(contentsOfFile: destination.path + "/usr/lib/systemd/system/mtlsegd@.service", encoding: .utf8)
        let templateStart = try XCTUnwrap(template.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        XCTAssertTrue(exists(String(templateStart.dropFirst("ExecStart=".count).split(separator: " ")[0])))
        XCTAssertTrue(exists("/usr/share/mtlseg/camera.toml"))
        // The Python client where Debian's python3 imports it from, byte for byte the repository's.
        let client = "/usr/lib/python3/dist-packages/mtlseg_client.py"
        XCTAssertEqual(FileManager.default.contents(atPath: destination.path + client),
                       FileManager.default.contents(atPath: Self.repository.appendingPathComponent("Sources/MTLSegWire/python/mtlseg_client.py").path),
                       "\(client) is not the repository's client")
        XCTAssertTrue(exists("/usr/share/doc/mtlseg/examples/example_fps.py"))
        // Manual pages and completions, as the package has them.
        let manualAndCompletions = ["/usr/share/man/man1/mtlseg.1.gz", "/usr/share/man/man1/mtlsegd.1.gz",
                                    "/usr/share/bash-completion/completions/mtlseg", "/usr/share/zsh/vendor-completions/_mtlsegd",
                                    "/usr/share/fish/vendor_completions.d/mtlseg.fish"]
        if !emulated {
            for path in manualAndCompletions { XCTAssertTrue(exists(path), "\(path) not installed") }
            let page = try runProcess("/bin/gzip", ["-dc", destination.path + "/usr/share/man/man1/mtlseg.1.gz"]).output
            XCTAssertTrue(page.contains(".Nm mtlseg") && page.contains("subscribe"), page)
        }
        // The installed config is valid for the installed daemon (model path overridden: it lives under DESTDIR here).
        let check = try runProcess(destination.path + "/usr/bin/mtlsegd",
                            ["--check-config", "--config", try hostRunnableConfig(destination.path + "/etc/mtlseg/mtlsegd.toml", folder: directory.path),
                             "--model", destination.path + "/var/lib/mtlseg/model.safetensors"])
        XCTAssertEqual(check.status, 0, check.output)
        let removed = try runProcess("/bin/bash", [script, "--uninstall"], environment: environment)
        XCTAssertEqual(removed.status, 0, removed.output)
        XCTAssertFalse(exists("/usr/bin/mtlsegd"))
        XCTAssertFalse(exists("/usr/lib/systemd/system/mtlsegd@.service") || exists("/usr/share/mtlseg/camera.toml"))
        XCTAssertFalse(exists(client), "uninstall left the Python client")
        for path in manualAndCompletions { XCTAssertFalse(exists(path), "uninstall left \(path)") }
        XCTAssertTrue(exists("/etc/mtlseg/mtlsegd.toml"), "the user's configuration is kept")
    }
}

/// The Debian package: built by systemd/build-deb.sh, inspected with dpkg-deb, judged by lintian, unpacked into a throwaway root.
final class DebianPackageTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A field device's system image is built in a chroot (or with `dpkg --root`), where no systemd runs: the
    /// package, installed there, must leave the service enabled for the first boot, and never start anything.
    /// Here dpkg installs it into an empty root with its maintainer scripts run outside a chroot (DPKG_ROOT), as
    /// mmdebstrap does; then remove, reinstall, an administrator's disable, an upgrade and purge, each judged by
    /// the files systemd reads at boot.
    func testAnImageBuiltWithoutSystemdRunningBootsWithTheServiceEnabled() throws {
        try XCTSkipUnless(getuid() == 0, "needs root: dpkg installs into a root of its own and owns files to the daemon's user")
        for tool in ["/usr/bin/systemd-sysusers", "/usr/bin/systemd-tmpfiles", "/usr/bin/deb-systemd-helper"] {
            try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing (the maintainer scripts run it): run .ci/setup")
        }
        let build = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("systemd/build-deb.sh").path])
        XCTAssertEqual(build.status, 0, build.output)
        let deb = try XCTUnwrap(build.output.split(separator: "\n").last.map(String.init))

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-image-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        _ = FileManager.default.createFile(atPath: root + "/var/lib/dpkg/status", contents: Data())
        func dpkg(_ arguments: [String]) throws {
            // --force-depends: the empty root holds none of the libraries the package depends on.
            let run = try runProcess("/usr/bin/dpkg", ["--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"] + arguments)
            XCTAssertEqual(run.status, 0, "dpkg \(arguments.joined(separator: " ")): \(run.output)")
        }
        let wants = root + "/etc/systemd/system/multi-user.target.wants/mtlsegd.service"
        let mask = root + "/etc/systemd/system/mtlsegd.service"
        func link(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

        try dpkg(["--install", deb])
        XCTAssertEqual(link(wants), "/lib/systemd/system/mtlsegd.service", "not enabled for the image's first boot")
        XCTAssertNil(link(mask))
        // The daemon's user exists in the image; the models' folder is root's, which the daemon only reads (no
        // StateDirectory=, which would own it and the models in it to the daemon at every start).
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        XCTAssertNotNil(passwd.split(separator: "\n").first { $0.hasPrefix("mtlseg:") }, passwd)
        for path in ["/var/lib/mtlseg", "/var/lib/mtlseg/model.safetensors"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: root + path)
            XCTAssertEqual((attributes[.ownerAccountID] as? NSNumber)?.intValue, 0, path)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, path.hasSuffix("mtlseg") ? 0o755 : 0o644, path)
        }

        // Removed (a camera of the template enabled by hand too): nothing left to start, the configuration kept.
        let camera = root + "/etc/systemd/system/multi-user.target.wants/mtlsegd@cam0.service"
        try FileManager.default.createSymbolicLink(atPath: camera, withDestinationPath: "/lib/systemd/system/mtlsegd@.service")
        try dpkg(["--remove", "mtlseg"])
        XCTAssertNil(link(camera), "the camera's link outlived its unit")
        XCTAssertEqual(link(mask), "/dev/null", "the removed service is masked while its configuration stays")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/etc/mtlseg/mtlsegd.toml"))
        // Installed again: enabled as it was before the removal.
        try dpkg(["--install", deb])
        XCTAssertNil(link(mask))
        XCTAssertEqual(link(wants), "/lib/systemd/system/mtlsegd.service")
        // Disabled by the administrator (what `systemctl disable` removes), then upgraded: it stays disabled.
        try FileManager.default.removeItem(atPath: wants)
        try dpkg(["--install", deb])
        XCTAssertNil(link(wants), "an upgrade enabled the service the administrator had disabled")
        // Upgrades from a package that kept no deb-systemd-helper state (it enabled the service with systemctl):
        // disabled there, it stays disabled; enabled, it stays enabled.
        let helperState = root + "/var/lib/systemd/deb-systemd-helper-enabled"
        try FileManager.default.removeItem(atPath: helperState)
        try dpkg(["--install", deb])
        XCTAssertNil(link(wants), "an upgrade from a stateless package enabled the disabled service")
        try FileManager.default.removeItem(atPath: helperState)
        try FileManager.default.createSymbolicLink(atPath: wants, withDestinationPath: "/lib/systemd/system/mtlsegd.service")
        try dpkg(["--install", deb])
        XCTAssertEqual(link(wants), "/lib/systemd/system/mtlsegd.service")
        // Purged: the configuration, the models and every trace of the service's state.
        try dpkg(["--purge", "mtlseg"])
        for path in ["/etc/mtlseg", "/var/lib/mtlseg", "/etc/systemd/system/mtlsegd.service",
                     "/etc/systemd/system/multi-user.target.wants/mtlsegd.service",
                     "/var/lib/systemd/deb-systemd-helper-enabled/mtlsegd.service.dsh-also",
                     "/var/lib/systemd/deb-systemd-helper-masked/mtlsegd.service"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + path) || link(root + path) != nil, "\(path) outlived the purge")
        }
    }


    func testThePackageBuildsPassesLintianAndUnpacksWhereTheUnitExpects() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: "/usr/bin/lintian"), "lintian missing: run .ci/setup")
        // No version given: the package takes the one the binary reports.
        let build = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("systemd/build-deb.sh").path])
        XCTAssertEqual(build.status, 0, build.output)
        let deb = try XCTUnwrap(build.output.split(separator: "\n").last.map(String.init))
        XCTAssertTrue(deb.hasSuffix(".deb"), build.output)

        // Built again from the same commit (a second on, the binary already built): the same bytes, for the package's
        // dates are the commit's (changelog, manual pages, the archive's files).
        let first = try Data(contentsOf: URL(fileURLWithPath: deb))
        sleep(1)
        let again = try runProcess("/bin/bash", [Self.repository.appendingPathComponent("systemd/build-deb.sh").path])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: deb)) == first, "a second build of the same commit differs")

        let info = try runProcess("/usr/bin/dpkg-deb", ["--info", deb])
        XCTAssertTrue(info.output.contains("Package: mtlseg") && info.output.contains("conffiles"), info.output)
        XCTAssertTrue(info.output.contains(" Version: \(MTLSegVersion.string)\n"), info.output)
        // Field devices update over cellular links and run from SD cards: at most 10 MB to fetch and 40 MB
        // installed, demo model included (it was 35 MB and 124 MB while the full Foundation and ICU were linked in).
        let debBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: deb)[.size] as? Int)
        XCTAssertLessThanOrEqual(debBytes, 10_000_000, "the .deb has grown past 10 MB")
        let installedKiB = try XCTUnwrap(info.output.split(separator: "\n").first { $0.contains("Installed-Size:") }
            .flatMap { Int($0.split(separator: " ").last ?? "") }, info.output)
        XCTAssertLessThanOrEqual(installedKiB * 1024, 40_000_000, "the package installs more than 40 MB")
        let contents = try runProcess("/usr/bin/dpkg-deb", ["--contents", deb]).output
        XCTAssertTrue(contents.contains("./usr/bin/mtlsegd -> mtlseg"), "mtlsegd is the mtlseg binary, by a link: \(contents)")
        for path in ["./usr/bin/mtlsegd", "./usr/bin/mtlseg", "./lib/systemd/system/mtlsegd.service", "./lib/systemd/system/mtlsegd@.service",
                     "./usr/share/mtlseg/camera.toml", "./usr/lib/sysusers.d/mtlseg.conf",
                     "./usr/lib/tmpfiles.d/mtlseg.conf", "./etc/mtlseg/mtlsegd.toml", "./var/lib/mtlseg/model.safetensors",
                     "./usr/lib/python3/dist-packages/mtlseg_client.py", "./usr/share/doc/mtlseg/examples/example_fps.py",
                     "./usr/share/man/man1/mtlseg.1.gz", "./usr/share/man/man1/mtlsegd.1.gz"] {
            XCTAssertTrue(contents.contains(path), "\(path) missing from the package")
        }
        // Checksums for `dpkg --verify mtlseg`.
        XCTAssertTrue(info.output.contains(" md5sums"), info.output)
        let lintian = try runProcess("/usr/bin/lintian", ["--tag-display-limit", "0", deb])
        // No errors and no warnings (among them: maintainer scripts calling systemctl, a recursive chown).
        let complaints = lintian.output.split(separator: "\n").filter { $0.hasPrefix("E:") || $0.hasPrefix("W:") }
        XCTAssertEqual(complaints, [], lintian.output)
        XCTAssertFalse(lintian.output.contains("no-manual-page") || lintian.output.contains("groff-message"), lintian.output)

        // Unpacked into a throwaway root, the daemon runs from it with the packaged configuration and model.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mtlseg-deb-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        XCTAssertEqual(try runProcess("/usr/bin/dpkg-deb", ["-x", deb, root]).status, 0)
        let check = try runProcess(root + "/usr/bin/mtlsegd", ["--check-config", "--config", try hostRunnableConfig(root + "/etc/mtlseg/mtlsegd.toml", folder: root),
                                                        "--model", root + "/var/lib/mtlseg/model.safetensors"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("int8"), "the demo model is the int8 one: \(check.output)")
        // The same binary under its own name is the tool.
        let tool = try runProcess(root + "/usr/bin/mtlseg", ["inspect", "--model", root + "/var/lib/mtlseg/model.safetensors"])
        XCTAssertEqual(tool.status, 0, tool.output)
        XCTAssertTrue(tool.output.contains("variant") && !tool.output.contains("configuration OK"), tool.output)
        // The manual pages are each tool's own: mtlseg's with its subcommands, mtlsegd's with its options and no subcommand.
        let mtlsegPage = try runProcess("/bin/gzip", ["-dc", root + "/usr/share/man/man1/mtlseg.1.gz"]).output
        XCTAssertTrue(mtlsegPage.contains(".Nm mtlseg") && mtlsegPage.contains("calibrate") && mtlsegPage.contains("subscribe"), mtlsegPage)
        let daemonPage = try runProcess("/bin/gzip", ["-dc", root + "/usr/share/man/man1/mtlsegd.1.gz"]).output
        XCTAssertTrue(daemonPage.contains(".Nm mtlsegd") && daemonPage.contains("check-config"), daemonPage)
        XCTAssertFalse(daemonPage.contains("subcommand"), daemonPage)
        // The bash completions, sourced as bash-completion does and asked what follows `mtlseg ca` and `mtlsegd --che`.
        func complete(_ tool: String, _ words: [String]) throws -> String {
            let line = words.joined(separator: " ")
            let script = """
                source '\(root)/usr/share/bash-completion/completions/\(tool)'
                COMP_WORDS=(\(line)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=\(line.utf8.count)
                _\(tool) \(tool) \(words.last!) \(words[words.count - 2]); echo "${COMPREPLY[@]}"
                """
            return try runProcess("/bin/bash", ["-c", script]).output
        }
        XCTAssertEqual(try complete("mtlseg", ["mtlseg", "ca"]).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) },
                       ["calibrate", "capture"])
        XCTAssertEqual(try complete("mtlsegd", ["mtlsegd", "--che"]).trimmingCharacters(in: .whitespacesAndNewlines), "--check-config")
        for path in ["/usr/share/zsh/vendor-completions/_mtlseg", "/usr/share/fish/vendor_completions.d/mtlsegd.fish"] {
            XCTAssertGreaterThan((try? FileManager.default.attributesOfItem(atPath: root + path)[.size] as? Int) ?? 0, 100, path)
        }
    }
}
