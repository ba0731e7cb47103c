#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// One camera's daemon among several (`mtlsegd --instance NAME`, the unit `mtlsegd@NAME.service`): its
/// configuration is `/etc/mtlseg/NAME.toml`, and everything it creates lies in its own runtime directory
/// `/run/mtlseg/NAME/`, the only place under /run that unit may write. One process per camera, so that a
/// camera that stalls or vanishes, or a crash, touches no other camera's stream.
public struct DaemonInstance: Equatable, Sendable {
    public let name: String
    public let configurationDirectory: String
    public let runtimeParent: String

    public static let defaultConfigurationDirectory = "/etc/mtlseg"
    public static let defaultRuntimeParent = "/run/mtlseg"
    /// The mask socket's file name inside an instance's runtime directory.
    public static let socketFileName = "mtlsegd.sock"

    /// `name` as systemd passes it (%i); a name that could leave its folder, or that would read the single
    /// service's configuration, is refused.
    public init(name: String, configurationDirectory: String = Self.defaultConfigurationDirectory,
                runtimeParent: String = Self.defaultRuntimeParent) throws {
        guard Self.isValidName(name) else {
            throw DaemonConfig.Problem(file: "--instance", key: "(name)",
                                       reason: "'\(name)' is not an instance name: 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
        guard name != "mtlsegd" else {
            throw DaemonConfig.Problem(file: "--instance", key: "(name)",
                                       reason: "'mtlsegd' would share mtlsegd.service's configuration (/etc/mtlseg/mtlsegd.toml); name the camera, e.g. 'front'")
        }
        self.name = name
        self.configurationDirectory = configurationDirectory
        self.runtimeParent = runtimeParent
    }

    static func isValidName(_ name: String) -> Bool {
        guard (1 ... 64).contains(name.utf8.count), !name.hasPrefix(".") else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a") ... UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A") ... UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(byte) || "-_.".utf8.contains(byte)
        }
    }

    public var configurationPath: String { Path.appending(configurationDirectory, name + ".toml") }
    public var runtimeDirectory: String { Path.appending(runtimeParent, name) }
    public var socketPath: String { Path.appending(runtimeDirectory, Self.socketFileName) }

    /// The defaults an instance starts from before its file: its socket in its runtime directory, and one
    /// inference thread (cameras share the board's cores; a file gives one more where cores are free).
    public var defaults: DaemonConfig {
        var config = DaemonConfig()
        config.socketPath = socketPath
        config.threads = 1
        return config
    }

    /// The instance's file over its defaults. The file must exist: without it every instance would open
    /// the same default camera.
    public func load() throws -> DaemonConfig {
        guard access(configurationPath, F_OK) == 0 else {
            throw DaemonConfig.Problem(file: configurationPath, key: "(file)",
                                       reason: "does not exist: instance '\(name)' needs its own configuration (copy /usr/share/mtlseg/camera.toml there "
                                         + "and set its [source] device)")
        }
        let config = try DaemonConfig.load(path: configurationPath, over: defaults)
        try checkPaths(config, file: configurationPath)
        return config
    }

    /// Sockets must lie in the instance's runtime directory: the unit can create files nowhere else, and a
    /// path copied from another camera's file would otherwise collide with that camera's socket.
    public func checkPaths(_ config: DaemonConfig, file: String) throws {
        let folder = runtimeDirectory
        for (key, path) in [("socket.path", config.socketPath), ("metrics.socket", config.metricsSocket)] {
            guard let path, Path.deletingLastComponent(path) != folder else { continue }
            throw DaemonConfig.Problem(file: file, key: key,
                                       reason: "'\(path)' is outside \(folder)/, instance '\(name)''s runtime directory (the only place "
                                         + "mtlsegd@\(name).service may create files); "
                                         + (key == "socket.path" ? "leave the key out for \(socketPath)" : "e.g. \"\(folder)/metrics.sock\""))
        }
    }

    /// The mask sockets of every daemon under `runtimeParent`: the single service's and each instance's, sorted.
    public static func runningSockets(runtimeParent: String = defaultRuntimeParent) -> [String] {
        var found: [String] = []
        func isSocket(_ path: String) -> Bool {
            var info = stat()
            return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
        }
        let single = Path.appending(runtimeParent, socketFileName)
        if isSocket(single) { found.append(single) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runtimeParent)) ?? []
        for name in names.sorted() where Path.isDirectory(Path.appending(runtimeParent, name)) == true {
            let socket = Path.appending(Path.appending(runtimeParent, name), socketFileName)
            if isSocket(socket) { found.append(socket) }
        }
        return found
    }
}
