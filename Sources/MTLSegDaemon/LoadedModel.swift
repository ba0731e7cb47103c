#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCore
import MTLSegImage
import MTLSegWire

/// A model loaded and warmed for serving: its engine and the stream description clients get.
public struct LoadedModel {
    public let description: ModelDescription
    public let engine: SegmentationEngine
    public let stream: StreamDescription

    /// Loads `path`, builds its engine at the model's input size (or `fallbackSize` when it declares none) and runs it once.
    /// A model whose engine would need more memory than `budget` is refused before anything is allocated.
    public static func load(path: String, threads: Int, fallbackSize: InputSize,
                            budget: MemoryBudget = DaemonConfig().memoryBudget) throws -> LoadedModel {
        // Opened (and checked: a regular file, within the budget) before its bytes are hashed.
        let (opened, description) = try EngineFactory.open(path: path, defaultSize: fallbackSize, threads: threads, budget: budget,
                                                            warn: { DaemonLog.warning($0) })
        let modelFile = Path.appending(path, isDirectory(path) ? "model.safetensors" : "")
        let identity: String
        do {
            identity = SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: modelFile), options: .alwaysMapped))
        } catch {
            throw ModelError.unreadable(path: path, reason: errorReason(error))
        }
        // Warm up: the first run touches every buffer and weight.
        let warm = FloatBuffer(count: description.encoder.numChannels * opened.plan.input.pixels)
        opened.run(input: warm.pointer)
        // Classes the model gives no colours get the ones `mtlseg infer` draws them in.
        let palette = Palette.default.colors
        let tasks = description.tasks.enumerated().map { index, task in
            StreamDescription.Task(index: index, name: task.name, classes: task.classes,
                                   colors: task.colors ?? (0 ..< task.classCount).map { palette[$0 % palette.count].map(Int.init) })
        }
        let precision = opened.precisionName.hasPrefix("int8") ? "int8" : "fp32"
        let stream = StreamDescription(model: .init(name: description.name, variant: description.variant, precision: precision, sha256: identity),
                                       maskWidth: opened.plan.outputSize.width, maskHeight: opened.plan.outputSize.height,
                                       tasks: tasks, encoding: .raw, latencies: InferencePipeline.latencyNames)
        return LoadedModel(description: description, engine: opened, stream: stream)
    }

    private static func isDirectory(_ path: String) -> Bool {
        return Path.isDirectory(path) == true
    }
}
