import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegDaemon
import MTLSegEssentials

/// mtlsegd's command line. A library, so that the `mtlseg` binary can also run as mtlsegd (the
/// Debian package ships one binary, with mtlsegd a link to it); Sources/mtlsegd is its own main.
public struct MTLSegDaemonCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mtlsegd",
        abstract: "Capture frames, segment them with an MTLSegFormer, publish the masks on a Unix socket.",
        discussion: """
        Settings come from the TOML file (--config, default \(DaemonConfig.defaultPath) when it exists); \
        flags override it. SIGHUP reloads the file and the model (the old model keeps serving if the new one \
        fails to load; the source and the sockets' paths wait for a restart); SIGTERM stops. The socket protocol: PROTOCOL.md in /usr/share/doc/mtlseg (gzipped by the \
        package; Sources/MTLSegWire in the source). Python programs read the masks with `import mtlseg_client`.
        """,
        version: MTLSegVersion.string)

    /// Call from the executable's entry point, after the BLAS environment is settled (BLASEnvironment).
    public static func main() {
        // A log written to a pipe whose reader has gone (`mtlsegd … | head`) must not kill the daemon and leave its
        // socket behind: the write fails instead (systemd already sets this for services; a shell does not).
        signal(SIGPIPE, SIG_IGN)
        var command: ParsableCommand
        do { command = try parseAsRoot(nil) } catch { exit(withError: error) }
        // --help and --version parse as commands of ArgumentParser's own, whose run throws what
        // ArgumentParser prints itself (the help text), not a failure to log.
        guard command is MTLSegDaemonCommand else {
            do { try command.run() } catch { exit(withError: error) }
            return
        }
        do {
            try command.run()
        } catch let code as ExitCode {
            exit(withError: code)
        } catch {
            // A failure to start names files and configuration values: logged through DaemonLog, which escapes
            // their control characters, so that a value cannot forge a journal line.
            DaemonLog.error("\(error)")
            exit(withError: ExitCode.failure)
        }
    }

    public init() {}

    @Option(name: .long, help: "TOML configuration file.")
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Run as one camera's daemon of several (mtlsegd@NAME.service): configuration /etc/mtlseg/NAME.toml, socket /run/mtlseg/NAME/mtlsegd.sock.", valueName: "NAME"))
    var instance: String?

    @Option(name: .long, help: "Model file or HF checkpoint directory.")
    var model: String?

    @Option(name: .long, help: "A V4L2 device (/dev/video0, /dev/v4l/by-id/…), a folder of images, 'synthetic', or 'auto'.")
    var source: String?

    @Option(name: .long, help: "Path of the Unix socket to publish on.")
    var socket: String?

    @Option(name: .long, help: "Threads for inference.")
    var threads: Int?

    @Option(name: .long, help: "Capture size WxH.")
    var size: String?

    @Option(name: .long, help: "Capture frame rate.")
    var fps: Double?

    @Flag(name: .long, help: "Check the configuration (and that the model loads), then exit.")
    var checkConfig = false

    /// The instance --instance names, if any.
    func daemonInstance() throws -> DaemonInstance? {
        guard let instance else { return nil }
        guard config == nil else { throw ValidationError("--instance reads /etc/mtlseg/\(instance).toml: leave out --config") }
        return try DaemonInstance(name: instance)
    }

    /// The file that the settings come from, as problems name it.
    func configurationName() throws -> String {
        if let instance = try daemonInstance() { return instance.configurationPath }
        return config ?? (FileManager.default.fileExists(atPath: DaemonConfig.defaultPath) ? DaemonConfig.defaultPath : "(flags)")
    }

    public func validate() throws {
        // As the configuration file's own check: an empty value is never meant.
        for (value, flag) in [(model, "--model"), (source, "--source"), (socket, "--socket"), (config, "--config"), (instance, "--instance")] {
            if value?.isEmpty == true { throw ValidationError("\(flag) is empty") }
        }
    }

    /// The file's settings with the flags on top.
    func settings() throws -> DaemonConfig {
        var settings = DaemonConfig()
        let path = config ?? DaemonConfig.defaultPath
        let instance = try daemonInstance()
        if let instance {
            settings = try instance.load()
        } else if config != nil || FileManager.default.fileExists(atPath: path) {
            settings = try DaemonConfig.load(path: path)
        }
        if let model {
            settings.model = model
        } else if settings.model == DaemonConfig.defaultModel {
            // Nothing configured: the installed model, else the demo model of this source tree.
            let candidates = DaemonConfig.defaultModelCandidates(executable: "/proc/self/exe")
            settings.model = candidates.first { FileManager.default.fileExists(atPath: $0) } ?? DaemonConfig.defaultModel
        }
        if let source { settings.source = source }
        if let socket { settings.socketPath = socket }
        if let threads {
            guard (1 ... 256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
            settings.threads = threads
        }
        if let size {
            let sides = DaemonConfig.captureSides
            guard let parsed = WidthByHeight.parse(size.lowercased(), sides: sides) else {
                throw ValidationError("--size must be WxH with each side \(sides.lowerBound) to \(sides.upperBound), e.g. 640x480")
            }
            settings.width = parsed.width
            settings.height = parsed.height
        }
        if let fps {
            guard fps > 0 && fps <= 1000 else { throw ValidationError("--fps must be in (0, 1000]") }
            settings.fps = fps
        }
        if let instance { try instance.checkPaths(settings, file: "\(instance.configurationPath) and flags") }
        return settings
    }

    /// Whether the settings are a systemd unit's (mtlsegd.service reads /etc/mtlseg/mtlsegd.toml; mtlsegd@NAME,
    /// --instance NAME): `--check-config` then checks them as that unit will run them.
    func isUnitConfiguration() throws -> Bool {
        if try daemonInstance() != nil { return true }
        let name = try configurationName()
        return Path.resolvingFolder(name).hasPrefix(Path.deletingLastComponent(DaemonConfig.defaultPath) + "/")
    }

    /// The folders systemd makes for the unit before it starts the daemon (RuntimeDirectory=), which need not exist
    /// when its configuration is checked.
    func unitRuntimeDirectories() throws -> [String] {
        if let instance = try daemonInstance() { return [instance.runtimeParent, instance.runtimeDirectory] }
        return [DaemonInstance.defaultRuntimeParent]
    }

    /// What the unit could not use of what the settings name, as start-up under the unit would find it: paths
    /// relative to the folder this check runs in (the unit runs from /), sockets outside its runtime directory (the
    /// only place its sandbox lets it create one that clients see), and files its account could not read (the
    /// configuration, the model, an image folder and its images).
    func checkServiceAccess(_ settings: DaemonConfig, file: String) throws {
        for (key, path) in [("model", settings.model), ("source.device", settings.source)]
        where !path.hasPrefix("/") && Path.isDirectory(path) != nil {
            throw DaemonConfig.Problem(file: file, key: key, reason: "'\(path)' is relative to the folder this check runs in; "
                + "the unit runs from /: give the absolute path")
        }
        let runtime = DaemonInstance.defaultRuntimeParent + "/"
        for (key, path) in [("socket.path", settings.socketPath), ("metrics.socket", settings.metricsSocket)] {
            if let path, !Path.resolvingFolder(path).hasPrefix(runtime) {
                throw DaemonConfig.Problem(file: file, key: key, reason: "'\(path)' is outside \(runtime): the unit's sandbox lets it create "
                    + "sockets that clients see only there (its RuntimeDirectory; ProtectSystem=strict, PrivateTmp=)")
            }
        }
        guard let account = ServiceAccount.lookup() else { return }
        var paths = [("(file)", file), ("model", settings.model)]
        if Path.isDirectory(settings.model) == true {
            paths += ["config.json", "model.safetensors", "preprocessor_config.json"].map { ("model", Path.appending(settings.model, $0)) }
        }
        if Path.isDirectory(settings.source) == true {
            paths.append(("source.device", settings.source))
            let names = (try? FileManager.default.contentsOfDirectory(atPath: settings.source)) ?? []
            // The images: the folder source reads its regular files (an unreadable one is skipped with a warning).
            paths += names.sorted().map { ("source.device", Path.appending(settings.source, $0)) }.filter { Path.isDirectory($0.1) == false }
        }
        for (key, path) in paths {
            if let problem = account.cannotRead(path) {
                throw DaemonConfig.Problem(file: file, key: key, reason: "the service (user \(ServiceAccount.user)) cannot read '\(path)': \(problem)")
            }
        }
    }

    /// Holds SIGHUP from main's first line: a reload asked for before the daemon waits for signals (a script's,
    /// a broadcast) would otherwise end the process, SIGHUP's default action; held, it reloads once running.
    public static func holdReloadsUntilRunning() {
        var reload = sigset_t()
        sigemptyset(&reload)
        sigaddset(&reload, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &reload, nil)
    }

    /// `problem` with the flag named instead of the file where the value came from a flag.
    func naming(flagOf problem: DaemonConfig.Problem) -> DaemonConfig.Problem {
        let flags: [String: (name: String, value: String?)] = ["socket.path": ("--socket", socket), "source.device": ("--source", source),
                                                                "model": ("--model", model)]
        guard let flag = flags[problem.key], let value = flag.value else { return problem }
        return DaemonConfig.Problem(file: "\(flag.name) \(value)", key: problem.key, reason: problem.reason)
    }

    public func run() throws {
        let settings = try settings()
        let file = try configurationName()
        // The same checks start-up would make of paths and names, before anything is loaded or bound; for a unit's
        // configuration, --check-config checks them as the unit will start (its runtime directory made, its account).
        let forUnit = try checkConfig && isUnitConfiguration()
        let madeAtStart = forUnit ? try unitRuntimeDirectories() : []
        do {
            try settings.checkStartup(file: file, madeAtStart: madeAtStart)
            if forUnit { try checkServiceAccess(settings, file: file) }
        } catch let problem as DaemonConfig.Problem {
            throw naming(flagOf: problem)
        }
        if let warning = CPUPlacement.oversubscription(threads: settings.threads, allowed: CPUPlacement.allowedCPUs()) {
            DaemonLog.warning(warning)
        }
        // Before any thread starts: threads inherit the blocked set, and a SIGHUP that reaches one that does
        // not block it kills the daemon instead of reloading it.
        let signals = SignalWaiter(signals: [SIGTERM, SIGINT, SIGHUP])
        let daemon = try Daemon(config: settings, unit: instance.map { "mtlsegd@\($0)" } ?? "mtlsegd", makeSource: SourceFactory.make)
        if checkConfig {
            let unmade = madeAtStart.filter { Path.isDirectory($0) != true }
            print(LogText.escaped("configuration OK: model \(settings.model) (\(daemon.stream.model.precision)), source \(settings.source), "
                + "socket \(settings.socketPath)" + (unmade.isEmpty ? "" : " (\(unmade.joined(separator: " and ")): made by systemd when the unit starts)")))
            return
        }
        try daemon.start()
        while true {
            let signal = signals.wait()
            if signal == SIGHUP {
                do {
                    daemon.reload(config: try self.settings())
                } catch {
                    DaemonLog.error("reload: \(error); still serving the current model")
                }
                continue
            }
            DaemonLog.info("signal \(signal): stopping")
            daemon.stop()
            return
        }
    }
}

/// Blocks the given signals in every thread and hands them out one at a time (sigwait), so the
/// daemon reacts to them on its main thread, outside any signal handler.
struct SignalWaiter {
    private var set = sigset_t()

    init(signals: [Int32]) {
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    func wait() -> Int32 {
        var signal: Int32 = 0
        var waitSet = set
        sigwait(&waitSet, &signal)
        return signal
    }
}
