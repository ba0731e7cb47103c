#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore
import MTLSegEssentials
import MTLSegImage
import TOMLKit

/// mtlsegd's settings: the TOML file (`/etc/mtlseg/mtlsegd.toml`), then command-line flags on top.
public struct DaemonConfig: Equatable, Sendable {
    /// Model file (int8 or fp32) or HF checkpoint directory.
    public var model: String = DaemonConfig.defaultModel
    /// Threads the engine may use.
    public var threads: Int = 2
    /// "auto" (/dev/video0 when it exists, else the synthetic field), a V4L2 device path (/dev/video0,
    /// /dev/v4l/by-id/…), a folder of images, or "synthetic".
    public var source: String = "auto"
    /// The capture size (`source.width`, `source.height`, mtlsegd `--size`), each side within `captureSides`; also the
    /// model's input size when the model declares none.
    public var width: Int = 640
    public var height: Int = 480
    public var fps: Double = 15
    /// The capture sizes mtlsegd takes, for each side.
    public static let captureSides: ClosedRange<Int> = 16 ... 8192
    public var socketPath: String = "/run/mtlseg/mtlsegd.sock"
    public var socketMode: mode_t = 0o660
    /// The group the socket file belongs to (name or number), so its members may connect; nil: the daemon's own.
    public var socketGroup: String?
    /// Peers allowed besides root and the daemon's own user; both empty: anyone who can open the socket.
    public var allowUIDs: [UInt32] = []
    public var allowGIDs: [UInt32] = []
    public var maxClients: Int = 16
    /// A client that takes no data for this long is disconnected.
    public var clientTimeout: Double = 2
    /// Most memory the masks made for clients at sizes of their own (HELLO `mask_size`) may take, in MiB, by
    /// `MaskMemoryBudget.bound`; a HELLO that would pass it is refused (ERROR over_budget).
    public var maskMemoryMB: Int = 64
    /// No frame for this long (`source.stall_timeout_s`): a camera is closed and reopened (its source turns
    /// `reconnecting`; `V4L2Camera.Timing.timeout`), and the watchdog stops being fed (ServiceNotifier's
    /// `stallAfter`, at least 3 frame intervals; it is still fed while the source is trying to open its camera).
    /// An image folder and the synthetic field are not timed by it.
    public var stallTimeout: Double = 2
    /// Where to serve Prometheus metrics (HTTP on a Unix socket); nil: off.
    public var metricsSocket: String?
    /// Memory a model (weights and activations) may take, in MiB; a model over it is refused at start and reload.
    public var memoryBudgetMB: Int = MemoryBudget.defaultMegabytes
    /// Most pixels an image of a folder source may declare; larger images are skipped before decoding.
    public var maxImagePixels: Int = PixelBudget.defaultPixels

    public var memoryBudget: MemoryBudget { MemoryBudget(megabytes: memoryBudgetMB, raisedBy: "memory_budget_mb in the configuration") }
    public var pixelBudget: PixelBudget { PixelBudget(pixels: maxImagePixels, raisedBy: "max_image_pixels in the configuration's [source]") }

    public static let defaultPath = "/etc/mtlseg/mtlsegd.toml"
    public static let defaultModel = "/var/lib/mtlseg/model.safetensors"

    /// Where the built-in default looks for a model when none is configured: the
    /// installed one, else the demo model of the source tree the binary was built in
    /// (`.build/<triple>/<config>/mtlsegd` → `calibration/demo/`).
    public static func defaultModelCandidates(executable: String) -> [String] {
        let tree = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return [defaultModel, tree.appendingPathComponent("calibration/demo/crops-int8.safetensors").path]
    }

    public init() {}

    /// A key or value the daemon cannot use, named as it is written in the file.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let file: String
        public let key: String
        public let reason: String
        public var description: String { "\(file): \(key): \(reason)" }

        public init(file: String, key: String, reason: String) {
            self.file = file
            self.key = key
            self.reason = reason
        }
    }

    /// Reads a TOML file over `base` (the defaults unless given). Unknown keys are errors (a typo must not be silently ignored).
    public static func load(path: String, over base: DaemonConfig = DaemonConfig()) throws -> DaemonConfig {
        let bytes: [UInt8]
        do {
            bytes = try RegularFileReader.read(path: path)
        } catch {
            throw Problem(file: path, key: "(file)", reason: "cannot be read (\(error.reason))")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Problem(file: path, key: "(file)", reason: "is not UTF-8 text (a TOML file must be); was it saved in another encoding?")
        }
        return try parse(text, file: path, over: base)
    }

    public static func parse(_ text: String, file: String = "<config>", over base: DaemonConfig = DaemonConfig()) throws -> DaemonConfig {
        // A file saved by a Windows editor ends its lines with CRLF; Swift reads "\r\n" as one character,
        // so lines would not split at "\n" at all.
        // A byte order mark, which some editors put first, is no part of the first key.
        var text = text.replacing("\r\n", with: "\n")
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        if let (number, line) = TOMLPrecheck.firstUnsupportedLine(text) {
            let shown = line.count > 60 ? String(line.prefix(60)) + "…" : line
            throw Problem(file: file, key: "(syntax)",
                          reason: "line \(number): expected `key = value` (a string, number, true or false, or an [array] of them), "
                            + "`[table]` or a comment (mtlsegd reads that much of TOML), got \(shown.debugDescription)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Problem(file: file, key: "(syntax)", reason: "line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        }
        guard let json = (try? JSONObject.parse(Data(table.convert(to: .json).utf8))) as? [String: Any] else {
            throw Problem(file: file, key: "(syntax)", reason: "not a TOML table")
        }
        var config = base
        var reader = KeyReader(file: file, values: json, prefix: "")
        config.model = try reader.string("model") ?? config.model
        config.threads = try reader.integer("threads", in: 1 ... 256) ?? config.threads
        config.memoryBudgetMB = try reader.integer("memory_budget_mb", in: 16 ... 1 << 30) ?? config.memoryBudgetMB
        // Every table is read, present or not (an absent one is empty and changes nothing), so that a key
        // written outside its table can be told where it belongs.
        var source = try reader.table("source")
        config.source = try source.string("device") ?? config.source
        config.width = try source.integer("width", in: Self.captureSides) ?? config.width
        config.height = try source.integer("height", in: Self.captureSides) ?? config.height
        config.fps = try source.number("fps", in: 0.1 ... 1000) ?? config.fps
        config.stallTimeout = try source.number("stall_timeout_s", in: 0.1 ... 3600) ?? config.stallTimeout
        config.maxImagePixels = try source.integer("max_image_pixels", in: 1 ... 1 << 28) ?? config.maxImagePixels
        var socket = try reader.table("socket")
        config.socketPath = try socket.string("path") ?? config.socketPath
        if let mode = try socket.string("mode") {
            guard let value = mode_t(mode, radix: 8), value <= 0o777 else {
                throw Problem(file: file, key: "socket.mode", reason: "'\(mode)' is not an octal file mode such as \"0660\"")
            }
            config.socketMode = value
        }
        config.socketGroup = try socket.string("group") ?? config.socketGroup
        config.allowUIDs = try socket.ids("allow_uids") ?? config.allowUIDs
        config.allowGIDs = try socket.ids("allow_gids") ?? config.allowGIDs
        config.maxClients = try socket.integer("max_clients", in: 1 ... 1024) ?? config.maxClients
        if let ms = try socket.integer("client_timeout_ms", in: 10 ... 600_000) { config.clientTimeout = Double(ms) / 1000 }
        config.maskMemoryMB = try socket.integer("mask_memory_mb", in: 1 ... 1 << 20) ?? config.maskMemoryMB
        var metrics = try reader.table("metrics")
        config.metricsSocket = try metrics.string("socket") ?? config.metricsSocket
        // Unknown keys once every table is read: a key written in the wrong place is told where it belongs.
        for table in [reader, source, socket, metrics] { try table.rejectUnknown(among: [reader, source, socket, metrics]) }
        try config.checkSocketPaths(file: file)
        return config
    }

    /// What a running daemon takes from `newer` at a reload: all of it but its source and its sockets' paths, which
    /// keep this configuration's values until a restart; `waiting` names those that differ, as the file writes them,
    /// so that a reload says so instead of ignoring them silently.
    public func reloaded(with newer: DaemonConfig) -> (config: DaemonConfig, waiting: [String]) {
        var kept = newer
        var waiting: [String] = []
        func keep<Value: Equatable>(_ field: WritableKeyPath<DaemonConfig, Value>, _ key: String,
                                    same: (Value, Value) -> Bool = { $0 == $1 }) {
            if !same(self[keyPath: field], newer[keyPath: field]) { waiting.append(key) }
            kept[keyPath: field] = self[keyPath: field]
        }
        keep(\.source, "source.device")
        keep(\.width, "source.width")
        keep(\.height, "source.height")
        keep(\.fps, "source.fps")
        keep(\.stallTimeout, "source.stall_timeout_s")
        keep(\.maxImagePixels, "source.max_image_pixels")
        keep(\.socketPath, "socket.path", same: Self.sameLocation)
        keep(\.metricsSocket, "metrics.socket")
        return (kept, waiting)
    }

    /// The metrics socket needs a path of its own: on the mask socket's path it could only fail to bind
    /// (the mask socket answers there) or, worse, replace it.
    public func checkSocketPaths(file: String) throws {
        guard let metrics = metricsSocket, Self.sameLocation(metrics, socketPath) else { return }
        throw Problem(file: file, key: "metrics.socket",
                      reason: "\(metrics.debugDescription) is also the mask socket's path (socket.path); give the metrics their own, "
                        + "e.g. \"/run/mtlseg/metrics.sock\"")
    }
}

/// Reads typed values out of a parsed table, remembering which keys were used and which the daemon knows
/// (every key asked for, present or not), so that an unknown key can be answered with the one meant.
private struct KeyReader {
    let file: String
    let values: [String: Any]
    let prefix: String
    var used: Set<String> = []
    var known: [String] = []
    var tables: Set<String> = []

    init(file: String, values: [String: Any], prefix: String) {
        self.file = file
        self.values = values
        self.prefix = prefix
    }

    private func problem(_ key: String, _ reason: String) -> DaemonConfig.Problem {
        DaemonConfig.Problem(file: file, key: prefix + key, reason: reason)
    }

    mutating func string(_ key: String) throws -> String? {
        known.append(key)
        guard let value = values[key] else { return nil }
        used.insert(key)
        guard let text = value as? String, !text.isEmpty else { throw problem(key, "must be a non-empty string") }
        return text
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        known.append(key)
        guard let value = values[key] else { return nil }
        used.insert(key)
        guard let number = JSONObject.double(value), number == number.rounded(), let integer = JSONObject.int(value) else {
            throw problem(key, "must be an integer")
        }
        guard range.contains(integer) else { throw problem(key, "\(integer) is outside \(range.lowerBound)…\(range.upperBound)") }
        return integer
    }

    mutating func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        known.append(key)
        guard let value = values[key] else { return nil }
        used.insert(key)
        guard let number = JSONObject.double(value) else { throw problem(key, "must be a number") }
        guard range.contains(number) else { throw problem(key, "\(number) is outside \(range.lowerBound)…\(range.upperBound)") }
        return number
    }

    mutating func ids(_ key: String) throws -> [UInt32]? {
        known.append(key)
        guard let value = values[key] else { return nil }
        used.insert(key)
        guard let list = value as? [Any] else { throw problem(key, "must be a list of numeric ids") }
        return try list.map {
            guard let number = JSONObject.double($0), let id = UInt32(exactly: number) else {
                throw problem(key, "must be a list of numeric ids")
            }
            return id
        }
    }

    /// The table under `key`; an empty one where the file has none.
    mutating func table(_ key: String) throws -> KeyReader {
        known.append(key)
        tables.insert(key)
        guard let value = values[key] else { return KeyReader(file: file, values: [:], prefix: prefix + key + ".") }
        used.insert(key)
        guard let table = value as? [String: Any] else { throw problem(key, "must be a table ([\(key)])") }
        return KeyReader(file: file, values: table, prefix: prefix + key + ".")
    }

    /// Call once every key of the file has been asked for; `readers`, those of the whole file (this one among
    /// them), tell a key written above its table's line, or below one, where it belongs.
    func rejectUnknown(among readers: [KeyReader]) throws {
        guard let key = values.keys.sorted().first(where: { !used.contains($0) }) else { return }
        // A typo (`threds`, `fsp`) names the key meant.
        let close = known.map { (key: $0, distance: typoDistance(key, $0)) }
            .filter { $0.distance <= (key.count <= 4 ? 1 : 2) }
            .min { $0.distance < $1.distance }
        if let meant = close?.key {
            throw problem(key, "unknown key (did you mean \(tables.contains(meant) ? "[\(prefix + meant)]" : prefix + meant)?)")
        }
        // The top level's key under a table, or a table's key at the top level (its `[table]` line forgotten). Between
        // two tables a name means different things (`[metrics] path` is not the mask socket's path): no hint there.
        let owner = readers.first { reader in
            (reader.prefix.isEmpty != prefix.isEmpty) && reader.known.contains(key) && !reader.tables.contains(key)
        }
        if let owner {
            let table = String(owner.prefix.dropLast())
            throw problem(key, table.isEmpty ? "unknown key here: it belongs at the top level, before the first `[table]` line"
                                             : "unknown key here: it belongs in [\(table)] (write it after a `[\(table)]` line)")
        }
        let here = prefix.isEmpty ? "the top level" : "[\(prefix.dropLast())]"
        let takes = known.map { tables.contains($0) ? "[\(prefix + $0)]" : $0 }
        throw problem(key, "unknown key; \(here) takes \(takes.joined(separator: ", "))")
    }
}

/// Optimal string alignment distance: the fewest insertions, deletions, substitutions and swaps of two
/// neighbouring characters that make `a` into `b` (the usual typing mistakes).
func typoDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0 ... a.count { d[i][0] = i }
    for j in 0 ... b.count { d[0][j] = j }
    for i in stride(from: 1, through: a.count, by: 1) {
        for j in stride(from: 1, through: b.count, by: 1) {
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}
