import Foundation
import MTLSegDaemon

/// A daemon configuration for the tests that start one: the repository's tiny two-task model (plants, rows), one
/// inference thread, 30 fps, the socket `mtlsegd.sock` in `directory`. Callers change what their test is about.
func tinyModelConfig(socketIn directory: URL) -> DaemonConfig {
    var config = DaemonConfig()
    config.model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
    config.threads = 1
    config.fps = 30
    config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
    return config
}
