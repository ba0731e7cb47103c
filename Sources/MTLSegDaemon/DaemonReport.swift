#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The daemon's two reports of the same readings: the Prometheus text the metrics socket serves, and the JSON of
/// STATS (PROTOCOL.md). Both read the pipeline's counters, the server's clients and the model served.
extension Daemon {
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
