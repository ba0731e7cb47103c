import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCore
import MTLSegImage

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Argmax agreement of a model (e.g. int8) with a reference (e.g. its fp32 source) on images.",
        discussion: "Both run at the candidate's input size. Prints per task the share of pixels whose class agrees, and the largest logit difference.")

    @Option(name: .long, help: "The model to judge (e.g. the int8 file).")
    var model: String

    @Option(name: .long, help: "The reference model (e.g. the fp32 file or HF checkpoint).")
    var reference: String

    @Option(name: .long, help: "Folder of PNG/JPEG images, or a text file listing them.")
    var images: String

    @Option(name: .long, help: "Threads.")
    var threads: Int = 1

    @Flag(name: .long, help: "Run an int8 --model through the fp32 engine (its dequantized weights): the share of the error its weights cause.")
    var fp32 = false

    @Flag(name: .long, help: "End with one JSON line of the results.")
    var json = false

    @OptionGroup var limits: ResourceLimits

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }

    func run() throws {
        let candidateSource = try ModelSource(path: model), referenceSource = try ModelSource(path: reference)
        let d = candidateSource.description
        guard d.tasks.map(\.classCount) == referenceSource.description.tasks.map(\.classCount) else {
            throw ToolError("\(model) and \(reference) do not have the same tasks and classes")
        }
        let paths = try ImageList.paths(images, option: "--images")
        guard !paths.isEmpty else { throw ToolError("\(images): no PNG or JPEG images") }
        // An image that cannot be read is skipped with a warning naming it, as calibrate does; none readable is an error.
        var failed: Set<String> = []
        func read(_ path: String) -> RGBImage? {
            guard !failed.contains(path) else { return nil }
            do {
                return try ImageFile.read(path: path, budget: limits.pixels)
            } catch {
                failed.insert(path)
                writeToStandardError("warning: skipping \(error)\n")
                return nil
            }
        }
        guard let first = paths.lazy.compactMap(read).first else { throw ToolError("\(images): none of the \(paths.count) images could be read") }
        let input = d.input ?? InputSize(width: first.width, height: first.height)
        let candidate = try EngineFactory.make(source: candidateSource,
                                               height: input.height, width: input.width, threads: threads, precision: fp32 ? .fp32 : .auto,
                                               budget: limits.memory)
        let referenceEngine = try EngineFactory.make(source: referenceSource,
                                                     height: input.height, width: input.width, threads: threads, budget: limits.memory)
        // Each model sees the image normalised its own way (a normalisation that differs is part of what is compared).
        let preprocessor = ModelInputPreprocessor(targetWidth: input.width, targetHeight: input.height, mean: d.mean, std: d.std)
        let r = referenceSource.description
        let referencePreprocessor = ModelInputPreprocessor(targetWidth: input.width, targetHeight: input.height, mean: r.mean, std: r.std)
        let pixels = FloatBuffer(count: preprocessor.outputCount), referencePixels = FloatBuffer(count: referencePreprocessor.outputCount)
        var agreeing = [Int](repeating: 0, count: d.tasks.count), total = [Int](repeating: 0, count: d.tasks.count)
        var largest = [Float](repeating: 0, count: d.tasks.count)
        for path in paths {
            guard let image = read(path) else { continue }
            preprocessor.process(image, into: pixels.pointer)
            referencePreprocessor.process(image, into: referencePixels.pointer)
            candidate.run(input: pixels.pointer)
            referenceEngine.run(input: referencePixels.pointer)
            for t in d.tasks.indices {
                let a = SegmentationMask(logits: candidate.logits[t]), b = SegmentationMask(logits: referenceEngine.logits[t])
                agreeing[t] += zip(a.classes, b.classes).filter { $0 == $1 }.count
                total[t] += a.classes.count
                let x = candidate.logits[t].values, y = referenceEngine.logits[t].values
                largest[t] = max(largest[t], zip(x, y).map { abs($0 - $1) }.max() ?? 0)
            }
        }
        let skipped = failed.count, compared = paths.count - skipped
        print("\(model) (\(candidate.precisionName)) against \(reference) (\(referenceEngine.precisionName)), \(compared) images at \(input.width)x\(input.height)"
            + (skipped > 0 ? " (\(skipped) skipped)" : ""))
        var report: [String: Any] = ["images": compared, "skipped_images": skipped, "width": input.width, "height": input.height]
        var tasks: [String: Any] = [:]
        for (t, task) in d.tasks.enumerated() {
            let agreement = Double(agreeing[t]) / Double(max(total[t], 1))
            print(String(cFormat: "  %@: argmax agreement %.2f%%, max |logit difference| %.4g", task.name, agreement * 100, largest[t]))
            tasks[task.name] = ["argmax_agreement": agreement, "max_abs_logit_difference": Double(largest[t])]
        }
        report["tasks"] = tasks
        if json {
            print(String(decoding: try JSONObject.data(report), as: UTF8.self))
        }
    }
}
