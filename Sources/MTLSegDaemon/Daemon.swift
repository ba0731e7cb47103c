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
    private var model: LoadedModel {
        get { modelLock.lock(); defer { modelLock.unlock() }; return loadedModel }
        set { modelLock.lock(); loadedModel = newValue; modelLock.unlock() }
    }
    private let source: FrameSource
    private let server: MaskServer
    private let pipeline: InferencePipeline
    private let started = Clock.monotonicNanoseconds()
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
                // A source the restart would refuse is said now, not found at the next boot.
                if waiting.contains("source.device"), let problem = SourceFactory.cameraProblem(newConfig.source) {
                    DaemonLog.error("reloaded, but source.device can never be a camera, and a restart would fail: \(problem)")
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

    public var counters: PipelineCounters { pipeline.counters }
    public var clients: [ClientCounters] { server.clientCounters }
    /// The last clients that left (MaskServer.departedKept), oldest first.
    public var departedClients: [ClientCounters] { server.departedClients }
    public var departedCount: Int { server.departedCount }
    public var stream: StreamDescription { model.stream }
    /// The mask sizes besides the model's that connected clients asked for (each frame is made at each).
    public var wantedMaskGrids: [MaskGrid] { server.wantedMaskGrids }

    /// The same counters as STATS, and the stage latency histograms, in the Prometheus text format.
    func metricsText() -> String {
        // The last frame first: one published between the two reads is then not newer than `now` (now − last trapped).
        let last = pipeline.lastPublishedNanoseconds
        let now = Clock.monotonicNanoseconds()
        let c = pipeline.counters
        var out = PrometheusText()
        out.metric("mtlseg_frames_captured_total", "counter", "Frames the source delivered.", [("", Double(c.captured))])
        out.metric("mtlseg_frames_dropped_by_driver_total", "counter", "Frames the capture driver lost (sequence gaps).", [("", Double(c.droppedByDriver))])
        out.metric("mtlseg_frames_skipped_total", "counter", "Frames replaced by a newer one before inference.", [("", Double(c.skippedBeforeInference))])
        out.metric("mtlseg_frames_inferred_total", "counter", "Frames the model ran on.", [("", Double(c.inferred))])
        out.metric("mtlseg_frames_published_total", "counter", "Frames published to clients.", [("", Double(c.published))])
        let clients = server.clientCounters
        func label(_ client: ClientCounters) -> String { "{client=\"\(client.id)\",name=\"\(PrometheusText.label(client.name))\"}" }
        out.metric("mtlseg_client_frames_delivered_total", "counter", "Frames written to each connected client.", clients.map { (label($0), Double($0.delivered)) })
        out.metric("mtlseg_client_frames_dropped_total", "counter", "Published frames each connected client was never sent (it fell behind, or they were of a model a reload replaced).", clients.map { (label($0), Double($0.dropped)) })
        out.metric("mtlseg_clients", "gauge", "Connected clients.", [("", Double(clients.count))])
        out.metric("mtlseg_clients_departed_total", "counter", "Clients that have disconnected since start.",
                   [("", Double(server.departedCount))])
        let model = self.model, served = model.stream.model
        out.metric("mtlseg_model_info", "gauge", "Always 1; the labels name the model being served (they change at a reload).",
                   [("{name=\"\(PrometheusText.label(model.description.name))\",precision=\"\(served.precision)\",sha256=\"\(served.sha256)\"}", 1)])
        // The state's kind only: its reason and retry time would make a new series every second.
        let state = pipeline.sourceState.kind
        out.metric("mtlseg_source_info", "gauge", "Always 1; the labels name the source and its state (mtlseg status gives the reason).",
                   [("{name=\"\(PrometheusText.label(pipeline.sourceName))\",state=\"\(state)\"}", 1)])
        out.metric("mtlseg_fps", "gauge", "Frames per second over the last 2 s.",
                   [("{kind=\"captured\"}", pipeline.recentCaptures.rate(now: now)), ("{kind=\"published\"}", pipeline.recentPublished.rate(now: now))])
        out.metric("mtlseg_last_frame_age_seconds", "gauge", "Time since the last published frame (since start when none).",
                   [("", Double(now - (last == 0 ? started : last)) / 1e9)])
        out.metric("mtlseg_uptime_seconds", "gauge", "Time since the daemon started.", [("", Double(now - started) / 1e9)])
        out.metric("mtlseg_build_info", "gauge", "Always 1; the label is the daemon's version.",
                   [("{version=\"\(PrometheusText.label(MTLSegVersion.string))\"}", 1)])
        var samples: [(labels: String, value: Double)] = []
        for (stage, histogram) in zip(InferencePipeline.latencyNames, pipeline.histograms.snapshot) {
            for (bound, count) in zip(LatencyHistograms.bounds, histogram.buckets) {
                samples.append(("_bucket{stage=\"\(stage)\",le=\"\(bound)\"}", Double(count)))
            }
            samples.append(("_bucket{stage=\"\(stage)\",le=\"+Inf\"}", Double(histogram.count)))
            samples.append(("_sum{stage=\"\(stage)\"}", histogram.sum))
            samples.append(("_count{stage=\"\(stage)\"}", Double(histogram.count)))
        }
        out.metric("mtlseg_stage_latency_seconds", "histogram", "Per-frame latency of each pipeline stage.", samples)
        return out.text
    }

    /// The counters and state, as STATS carries them.
    func statsJSON() -> [UInt8] {
        // The last frame first: one published between the two reads is then not newer than `now`.
        let last = pipeline.lastPublishedNanoseconds
        let now = Clock.monotonicNanoseconds()
        let model = self.model
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let counters = (try? JSONObject.parse(encoder.encode(pipeline.counters))) ?? [:]
        let clients = server.clientCounters.map { ["id": $0.id, "name": $0.name, "uid": $0.uid, "delivered": $0.delivered, "dropped": $0.dropped] }
        let percentiles = pipeline.recentPublished.percentiles()
        var latency: [String: Any] = [:]
        for (index, name) in InferencePipeline.latencyNames.enumerated() where index < percentiles.count {
            latency[name] = ["p50": percentiles[index][0], "p90": percentiles[index][1], "p99": percentiles[index][2]]
        }
        let report: [String: Any] = [
            "version": MTLSegVersion.string,
            "uptime_s": Double(now - started) / 1e9,
            "source": ["name": pipeline.sourceName, "state": pipeline.sourceState.description],
            "model": ["name": model.description.name, "sha256": model.stream.model.sha256, "precision": model.stream.model.precision],
            "counters": counters,
            "fps": ["captured": pipeline.recentCaptures.rate(now: now), "published": pipeline.recentPublished.rate(now: now)],
            "latency_ms": latency,
            "clients": clients,
            "clients_departed": server.departedCount,
            // Since start when nothing has been published yet, so a stall from the start shows too.
            "last_frame_age_s": Double(now - (last == 0 ? started : last)) / 1e9,
        ]
        return Array((try? JSONObject.data(report)) ?? Data("{}".utf8))
    }
}
