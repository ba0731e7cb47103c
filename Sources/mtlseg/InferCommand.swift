import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch
import MTLSegEssentials
import MTLSegCore
import MTLSegImage

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run a model on one image: a colour mask and an overlay per task, optionally the raw logits.",
        discussion: """
        The image (PNG or JPEG) is resized to the model's input size (or --size) and normalised as HF's \
        SegformerImageProcessor does; an HF checkpoint declares no size, so its images run at their own. \
        Masks are the argmax of the logits resized to the image's size (bilinearly, as HF's \
        post_process_semantic_segmentation and the daemon's mask_size do).
        """)

    @Option(name: .long, help: "Model file (.safetensors) or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Image to segment (PNG or JPEG).")
    var image: String

    @Option(name: .long, help: "Folder for <image>.<task>.mask.png and <image>.<task>.overlay.png.")
    var out: String = "."

    @Option(name: .long, help: ArgumentHelp("Write the raw logits [K, ceil(H/4), ceil(W/4)] as float32 .npy.",
                                            discussion: "One task: to PATH. Several: PATH with the task name before the extension."))
    var logits: String?

    @Option(name: .long, help: "Input size WxH, overriding the model's.", transform: ImageSize.parse)
    var size: ImageSize?

    @Flag(name: .customLong("class-ids"), help: "Also write <image>.<task>.classes.png: the class ids as grey levels, at the image's size.")
    var classIDs = false

    @Option(name: .long, help: "Threads for the matrix products.")
    var threads: Int = 1

    @OptionGroup var limits: ResourceLimits

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }

    func run() throws {
        let source = try ModelSource(path: model)
        source.warnings.forEach(ModelWarnings.standardError)
        let d = source.description
        // Where the results go is checked before the image is read and the model run.
        // (--out first: --logits may name a file inside it.)
        try OutputPaths.makeFolder(out, option: "--out")
        // The path as given first: a task's name is added to it for a multi-task model, which would hide an empty one.
        if let logits { try OutputPaths.checkFileName(logits, option: "--logits") }
        let logitsPaths = logits.map { path in d.tasks.map { d.tasks.count == 1 ? path : Self.perTaskPath(path, task: $0.name) } } ?? []
        for path in logitsPaths {
            try OutputPaths.checkWritable(path, option: "--logits")
            try OutputPaths.refuseOverwriting(OutputPaths.modelFiles(model) + [image], with: path, option: "--logits")
        }
        let picture = try ImageFile.read(path: image, budget: limits.pixels)
        let input = size.map { InputSize(width: $0.width, height: $0.height) } ?? d.input
            ?? InputSize(width: picture.width, height: picture.height)
        guard d.encoder.numChannels == 3 else {
            throw ValidationError("the model takes \(d.encoder.numChannels) channels; images are RGB")
        }
        let engine = try EngineFactory.make(source: source, height: input.height, width: input.width, threads: threads, budget: limits.memory)
        let preprocessor = ModelInputPreprocessor(targetWidth: input.width, targetHeight: input.height, mean: d.mean, std: d.std)
        let pixels = FloatBuffer(count: preprocessor.outputCount)
        preprocessor.process(picture, into: pixels.pointer)
        let start = DispatchTime.now()
        engine.run(input: pixels.pointer)
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6

        let stem = Path.deletingPathExtension(Path.lastComponent(image))
        print(String(cFormat: "%@: %dx%d input, %@ forward pass %.1f ms", image, input.width, input.height, engine.precisionName, milliseconds))
        for (t, task) in d.tasks.enumerated() {
            let mask = SegmentationMask(logits: engine.logits[t], width: picture.width, height: picture.height)
            let colors = (task.colors ?? Palette.default.colors.prefix(task.classCount).map { $0.map(Int.init) }).map { $0.map(UInt8.init) }
            let base = Path.appending(out, "\(stem).\(task.name)")
            try ImageFile.writePNG(colorize(mask: mask.classes, width: mask.width, height: mask.height, colors: colors),
                                   path: base + ".mask.png")
            try ImageFile.writePNG(overlay(image: picture, mask: mask.classes, maskWidth: mask.width, maskHeight: mask.height,
                                           colors: colors, alpha: 0.5),
                                   path: base + ".overlay.png")
            if classIDs { try ImageFile.writeGrayPNG(width: mask.width, height: mask.height, pixels: mask.classes, path: base + ".classes.png") }
            let fractions = mask.classFractions(classCount: task.classCount)
            let summary = zip(task.classes, fractions).map { String(cFormat: "%@ %.1f%%", $0, $1 * 100) }.joined(separator: ", ")
            print("  \(task.name): \(summary) -> \(base).mask.png, \(base).overlay.png")
            if !logitsPaths.isEmpty {
                let path = logitsPaths[t]
                try NumpyFile.write(engine.logits[t], to: path)
                print("  \(task.name): logits \(engine.logits[t].shape) -> \(path)")
            }
        }
    }

    /// x.npy → x.<task>.npy
    static func perTaskPath(_ path: String, task: String) -> String {
        let ext = Path.pathExtension(path)
        let base = ext.isEmpty ? path : Path.deletingPathExtension(path)
        return base + "." + task + "." + (ext.isEmpty ? "npy" : ext)
    }
}
