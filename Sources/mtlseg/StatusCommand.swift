import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegDaemon
import MTLSegEssentials
import MTLSegWire

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show running mtlsegd daemons' state: source, rates, latency percentiles, drops, clients, model.",
        discussion: """
        Without --socket or --instance: every daemon under /run/mtlseg, the single service's \
        (/run/mtlseg/mtlsegd.sock) and each camera's of mtlsegd@.service (/run/mtlseg/NAME/mtlsegd.sock). Rates and \
        percentiles cover the last moments (2 s, 512 frames), so a stalled source shows 0 fps and a growing last-frame \
        age, never stale numbers. --json prints the daemon's STATS object as it is; for several daemons, one object \
        with each socket's path as the key.
        """)

    @Option(name: .long, help: "One daemon's socket.")
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("One camera's daemon of mtlsegd@.service (its socket /run/mtlseg/NAME/mtlsegd.sock).", valueName: "NAME"))
    var instance: String?

    @Flag(name: .long, help: "Print the raw JSON.")
    var json = false

    func validate() throws {
        if socket != nil && instance != nil { throw ValidationError("give --socket or --instance, not both") }
    }

    func run() throws {
        let sockets = try socketsToAsk()
        if sockets.count == 1 {
            let bytes = try Self.stats(socket: sockets[0])
            if json { print(String(decoding: bytes, as: UTF8.self)) } else { try Self.printReport(bytes) }
            return
        }
        var failures = 0
        var reports: [String: Any] = [:]
        for (index, socket) in sockets.enumerated() {
            if !json { print((index == 0 ? "" : "\n") + "== \(Self.daemonName(socket)) (\(socket))") }
            do {
                let bytes = try Self.stats(socket: socket)
                if json {
                    reports[socket] = try JSONObject.parse(Data(bytes))
                } else {
                    try Self.printReport(bytes)
                }
            } catch {
                failures += 1
                if json { reports[socket] = ["error": "\(error)"] } else { print("error: \(error)") }
            }
        }
        if json { print(String(decoding: try JSONObject.data(reports), as: UTF8.self)) }
        if failures > 0 { throw ExitCode.failure }
    }

    /// --socket, --instance's socket, or every daemon's found under /run/mtlseg (the single service's
    /// path when none is, so that the error names it).
    func socketsToAsk() throws -> [String] {
        if let socket { return [socket] }
        if let instance { return [try DaemonInstance(name: instance).socketPath] }
        let running = DaemonInstance.runningSockets()
        return running.isEmpty ? [Path.appending(DaemonInstance.defaultRuntimeParent, DaemonInstance.socketFileName)] : running
    }

    /// mtlsegd.service for the single service's socket, mtlsegd@NAME for a camera's.
    static func daemonName(_ socket: String) -> String {
        let folder = Path.deletingLastComponent(socket)
        if folder == DaemonInstance.defaultRuntimeParent { return "mtlsegd.service" }
        if Path.deletingLastComponent(folder) == DaemonInstance.defaultRuntimeParent { return "mtlsegd@\(Path.lastComponent(folder))" }
        return socket
    }

    static func stats(socket: String) throws -> [UInt8] {
        // Only the statistics are wanted: ask for no task, so no frame is sent.
        let client = try connectToDaemon(socket: socket, hello: Hello(tasks: [], name: "mtlseg status"))
        try client.requestStats()
        var bytes: [UInt8] = []
        while bytes.isEmpty {
            if case let .stats(reply) = try client.next(timeout: 5) { bytes = reply }
        }
        return bytes
    }

    static func printReport(_ bytes: [UInt8]) throws {
        guard let stats = try JSONObject.parse(Data(bytes)) as? [String: Any] else {
            throw ToolError("the daemon's STATS is not a JSON object")
        }
        let source = stats["source"] as? [String: Any] ?? [:]
        let model = stats["model"] as? [String: Any] ?? [:]
        let counters = stats["counters"] as? [String: Any] ?? [:]
        // Whole numbers arrive as integers (JSONObject): read every number through JSONObject.double.
        let fps = stats["fps"] as? [String: Any] ?? [:]
        func number(_ value: Any?) -> Double { JSONObject.double(value) ?? 0 }
        if let version = stats["version"] as? String { print("version    mtlsegd \(version)") }
        print("model      \(model["name"] ?? "?") (\(model["precision"] ?? "?"), \(String(describing: model["sha256"] ?? "").prefix(12)))")
        print("source     \(source["name"] ?? "?"): \(source["state"] ?? "?")")
        print(String(cFormat: "uptime     %.0f s, last frame %.1f s ago", number(stats["uptime_s"]), number(stats["last_frame_age_s"])))
        print(String(cFormat: "fps        captured %.1f, published %.1f", number(fps["captured"]), number(fps["published"])))
        print("frames     captured \(counters["captured"] ?? 0), published \(counters["published"] ?? 0); dropped: by the driver "
            + "\(counters["dropped_by_driver"] ?? 0), skipped before inference \(counters["skipped_before_inference"] ?? 0)")
        if let latency = stats["latency_ms"] as? [String: Any] {
            for name in InferencePipeline.latencyNames {
                guard let p = latency[name] as? [String: Any] else { continue }
                print(String(cFormat: "latency    %-11@ p50 %6.2f  p90 %6.2f  p99 %6.2f ms", name, number(p["p50"]), number(p["p90"]), number(p["p99"])))
            }
        }
        let clients = stats["clients"] as? [[String: Any]] ?? []
        // This command's own connection is one of them: counted here but not listed (a control connection, it takes
        // none of max_clients' slots).
        print("clients    \(clients.count) connected (this status one included), \(stats["clients_departed"] ?? 0) left")
        for c in clients where (c["name"] as? String) != "mtlseg status" {
            print("  #\(c["id"] ?? "?") \(c["name"] ?? "") (uid \(c["uid"] ?? "?")): delivered \(c["delivered"] ?? 0), dropped \(c["dropped"] ?? 0)")
        }
    }
}
