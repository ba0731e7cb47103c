#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture
import MTLSegCore
import MTLSegWire

/// mtlsegd assembled: the model, the capture source, the pipeline and the socket server.
public final class Daemon: @unchecked Sendable {
    public private(set) var config: DaemonConfig
    /// The model served: replaced by a reload on the main thread, read by clients' threads (STATS) and the metrics
    /// thread, so only under `modelLock`; a reader takes one snapshot, not two reads across a reload.
    private var loadedModel: LoadedModel
    private let modelLock = Lock()
    /// (Internal for the reports, DaemonReport.swift.)
    private(set) var model: LoadedModel {
        get { modelLock.lock(); defer { modelLock.unlock() }; return loadedModel }
        set { modelLock.lock(); loadedModel = newValue; modelLock.unlock() }
    }
    private let source: FrameSource
    let server: MaskServer
    let pipeline: InferencePipeline
    /// When the daemon started (CLOCK_MONOTONIC nanoseconds): the reports' uptime.
    let started = Clock.monotonicNanoseconds()
    private let reloadLock = Lock()
    private var generation = 0
    private var notifier: ServiceNotifier?
    private var metrics: MetricsServer?

    /// What the log says of settings a reload changed but only a restart applies, naming the unit to restart.
    static func restartAdvice(waiting: [String], unit: String) -> String {
        "reloaded, but \(waiting.joined(separator: ", ")) changed: a running daemon keeps its own; "
            + "the new value takes effect when \(unit) restarts (systemctl restart \(unit))"
    }

    /// The systemd unit this daemon runs as (`mtlsegd`, or `mtlsegd@NAME` for a camera's instance), for the log's advice.
    public let unit: String

    /// Loads and warms the model and binds nothing yet; `makeSource` opens the configured source.
    public init(config: DaemonConfig, unit: String = "mtlsegd", makeSource: (DaemonConfig) throws -> FrameSource) throws {
        self.unit = unit
        // Again here: flags (--socket) may have moved the mask socket onto the metrics socket's path.
        try config.checkSocketPaths(file: "configuration and flags")
        self.config = config
        Allocator.keepLargeBlocksMapped()
        // Loading and warming a large model can take a while: ask systemd for time beyond TimeoutStartSec.
        ServiceNotifier.send("EXTEND_TIMEOUT_USEC=60000000\nSTATUS=loading \(config.model)")
        loadedModel = try LoadedModel.load(path: config.model, threads: config.threads,
                                     fallbackSize: InputSize(width: config.width, height: config.height), budget: config.memoryBudget)
        source = try makeSource(config)
        server = MaskServer(settings: MaskServer.Settings(config), stream: loadedModel.stream)
        pipeline = InferencePipeline(source: source, engine: loadedModel.engine, mean: loadedModel.description.mean,
                                     std: loadedModel.description.std, server: server)
        server.statsProvider = { [weak self] in self?.statsJSON() ?? Array("{}".utf8) }
    }

    /// Opens the socket, then starts capture and inference; tells systemd READY=1 once clients can connect.
    public func start() throws {
        try server.start()
        if let path = config.metricsSocket {
            let metrics = MetricsServer(path: path) { [weak self] in self?.metricsText() ?? "" }
            do {
                try metrics.start()
            } catch {
                // The mask socket is not left behind for clients to find nobody answering on.
                server.stop()
                throw error
            }
            self.metrics = metrics
        }
        pipeline.start()
        let notifier = ServiceNotifier(stallAfter: max(config.stallTimeout, 3 / config.fps)) { [pipeline, server] in
            let counters = pipeline.counters
            let state = pipeline.sourceState
            return ServiceNotifier.Health(lastFrameNanoseconds: pipeline.lastPublishedNanoseconds, published: counters.published,
                                          clients: server.clientCount, sourceState: state.description, sourceWaiting: state.isWaitingForDevice,
                                          sourceOpenAttempts: pipeline.sourceCounters.openAttempts)
        }
        self.notifier = notifier
        DaemonLog.info("mtlsegd \(MTLSegVersion.string) serving \(model.description.name) (\(model.stream.model.precision), \(model.description.tasks.count) task(s), "
            + "masks \(model.stream.maskWidth)x\(model.stream.maskHeight)) from \(source.name) on \(config.socketPath)")
        ServiceNotifier.send("READY=1\nSTATUS=serving")
        notifier.start()
    }

    /// Stops capture, finishes the frame in flight, closes every client.
    public func stop() {
        ServiceNotifier.send("STOPPING=1")
        notifier?.stop()
        pipeline.stop()
        metrics?.stop()
        server.stop()
        DaemonLog.info("stopped")
    }

    /// Loads `config`'s model beside the current one and switches to it, then takes over its socket settings (`MaskServer.apply`);
    /// the source and the sockets' paths wait for a restart, which the log says. On failure nothing changes: the current
    /// model keeps serving under the current settings.
    @discardableResult
    public func reload(config newConfig: DaemonConfig) -> Bool {
        reloadLock.lock()
        defer {
            ServiceNotifier.send("READY=1")
            reloadLock.unlock()
        }
        ServiceNotifier.send("RELOADING=1\nMONOTONIC_USEC=\(Clock.monotonicNanoseconds() / 1000)\nEXTEND_TIMEOUT_USEC=60000000")
        do {
            let loaded = try LoadedModel.load(path: newConfig.model, threads: newConfig.threads,
                                              fallbackSize: InputSize(width: newConfig.width, height: newConfig.height),
                                              budget: newConfig.memoryBudget)
            let (current, waiting) = config.reloaded(with: newConfig)
            // The socket settings first: a client the new allow-list refuses gets nothing of the new model.
            let applied = server.apply(MaskServer.Settings(current))
            generation += 1
            // The pipeline is left the old model's last holder: it frees it after the frame in flight (Allocator).
            model = loaded
            // Clients learn of the new stream first; frames of the old model still in flight are then not sent to them.
            server.changeStream(loaded.stream, generation: generation)
            pipeline.replaceEngine(loaded.engine, mean: loaded.description.mean, std: loaded.description.std, generation: generation)
            DaemonLog.info("reloaded: now serving \(loaded.description.name) (\(loaded.stream.model.sha256.prefix(12)))")
            if !applied.isEmpty { DaemonLog.info("reloaded: \(applied.joined(separator: ", ")) now in force") }
            if !waiting.isEmpty {
                // What the restart would refuse is said now, not found at the next boot.
                for problem in Self.restartProblems(newConfig, waiting: waiting) {
                    DaemonLog.error("reloaded, but a restart would fail: \(problem)")
                }
                DaemonLog.warning(Self.restartAdvice(waiting: waiting, unit: unit))
            }
            config = current
            return true
        } catch {
            DaemonLog.error("reload failed, still serving \(model.description.name): \(error)")
            return false
        }
    }

    /// What starting with `config` would refuse among the settings that wait for a restart (`waiting`): start-up's
    /// own checks of the sockets' paths and of the source, without binding or capturing anything.
    static func restartProblems(_ config: DaemonConfig, waiting: [String]) -> [String] {
        var problems: [String] = []
        if waiting.contains("source.device"), let problem = SourceFactory.startProblem(config) {
            problems.append("source.device: \(problem)")
        }
        if waiting.contains("socket.path") || waiting.contains("metrics.socket") {
            do {
                try config.checkStartup(file: "")
            } catch let problem as DaemonConfig.Problem {
                problems.append("\(problem.key): \(problem.reason)")
            } catch {
                problems.append("\(error)")
            }
        }
        return problems
    }

    public var counters: PipelineCounters { pipeline.counters }
    public var clients: [ClientCounters] { server.clientCounters }
    /// The last clients that left (MaskServer.departedKept), oldest first.
    public var departedClients: [ClientCounters] { server.departedClients }
    public var departedCount: Int { server.departedCount }
    public var stream: StreamDescription { model.stream }
    /// The mask sizes besides the model's that connected clients asked for (each frame is made at each).
    public var wantedMaskGrids: [MaskGrid] { server.wantedMaskGrids }
}
