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
import MTLSegQuant

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Quantize an fp32 model to int8 from a folder of images, with an accuracy report and budget.",
        discussion: """
        1. The images (a folder, or a text file listing paths) are split, seeded: --eval-split of them are \
        held out; the rest are run through the fp32 model, preprocessed exactly as infer and mtlsegd do, and \
        the range of every activation the int8 engine quantizes is measured (streaming: histograms, never \
        stored activations). --method picks each activation's u8 grid: mse (default; least squared error), \
        entropy (least KL divergence), percentile, minmax.
        2. Weights become int8 per output channel, rounded on the calibration inputs (--rounding data: each \
        weight's rounding error fed forward onto the weights not yet rounded, GPTQ-style; nearest: plain \
        rounding), and each bias takes back the mean shift the weights' rounding causes (--bias-correction \
        weights; output: the whole int8 product's, the input's grid included; none). Each layer's SQNR (its output \
        with input and weights quantized) is measured on a few calibration images; the report also gives \
        the accuracy of every combination of the two (--no-compare-techniques skips that).
        3. int8 is judged against fp32 on the held-out images: per task pixel agreement and agreement-mIoU, \
        and with --labels the real mIoU of both. With --max-drop, the layers with the lowest SQNR go back to \
        fp32 one by one until every task loses at most that many agreement-mIoU points; if even all of them \
        cannot, no model is written (an earlier one at OUT stays, with its report), the report goes to \
        OUT.report.failed.md and .json, and the tool exits non-zero saying why.
        4. The int8 model (the calibration recorded in its metadata; see mtlseg inspect) and a report \
        (OUT.report.md and OUT.report.json) are written.

        Example:  mtlseg calibrate --model crops.safetensors --images frames/ --out crops-int8.safetensors --max-drop 0.5
        Labels:   --labels DIR reads DIR/<task>/<image name>.png, grey levels = class ids (255: ignore).
        """)

    @Option(name: .long, help: "The fp32 model file or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Folder of PNG/JPEG images, or a text file listing image paths.")
    var images: String

    @Option(name: .long, help: "Where to write the int8 model file.")
    var out: String

    @Option(name: .long, help: "Input size WxH (default: the model's own; an HF checkpoint needs it or uses 512x512).", transform: ImageSize.parse)
    var size: ImageSize?

    @Option(name: .long, help: "How activation ranges are chosen: mse, entropy, percentile, minmax.")
    var method: String = "mse"

    @Option(name: .long, help: "For --method percentile: the percentile kept at each end (default: 99.99).")
    var percentile: Double?

    @Option(name: .long, help: "Share of the images held out for evaluation.")
    var evalSplit: Double = 0.2

    @Option(name: .long, help: "Held-out images to evaluate on (a folder or list), instead of splitting --images.")
    var evalImages: String?

    @Option(name: .long, help: "Seed of the split.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Label maps per task for the held-out images: DIR/<task>/<image name>.png.")
    var labels: String?

    @Option(name: .long, help: "Accuracy budget: agreement-mIoU points any task may lose; layers fall back to fp32 until it holds.")
    var maxDrop: Double?

    @Option(name: .long, help: "Report path without extension (default: OUT without .safetensors, plus .report).")
    var report: String?

    @Option(name: .long, help: "Attention's two matrix products (q·kᵀ, p·v): int8 or fp32.")
    var attention: String = "int8"

    @Option(name: .long, help: "How int8 weights are rounded: data (errors fed forward on the calibration inputs) or nearest.")
    var rounding: String = "data"

    @Option(name: .long, help: "What the int8 layers' biases take back out: weights (the rounding's mean shift), output (the whole int8 product's, input grid included) or none.")
    var biasCorrection: String = "weights"

    @Option(name: .long, help: """
        Per-channel smoothing before quantizing (exact in fp32): decoder (the stage outputs and the fused map), attention \
        (attention's output), both as attention,decoder, or none.
        """)
    var smoothing: String = "decoder"

    @Option(name: .long, help: """
        How many of the deepest encoder stages have their decoder projection read the stage output at 16 bits (from fp32) \
        instead of u8: the activations whose grids cost most where logit margins are small, for a few percent of the MACs \
        (default: 2, or every stage but the first in a model with fewer).
        """)
    var wideDecoderInputs: Int?

    @Flag(name: .long, inversion: .prefixedNo, help: "Evaluate every combination of --rounding and --bias-correction too, for the report.")
    var compareTechniques = true

    @Option(name: .long, help: "Threads for the latency figures in the report.")
    var threads: Int = 1

    @OptionGroup var limits: ResourceLimits

    func validate() throws {
        guard evalSplit > 0 && evalSplit < 1 else { throw ValidationError("--eval-split must be between 0 and 1") }
        if let maxDrop { guard maxDrop >= 0 && maxDrop <= 100 else { throw ValidationError("--max-drop must be between 0 and 100") } }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard attention == "int8" || attention == "fp32" else { throw ValidationError("--attention must be int8 or fp32") }
        if let wideDecoderInputs {
            guard wideDecoderInputs >= 0 && wideDecoderInputs <= 8 else { throw ValidationError("--wide-decoder-inputs must be between 0 and 8") }
        }
        _ = try parseMethod()
        guard SmoothingSites(parsing: smoothing) != nil else {
            throw ValidationError("--smoothing must be none, attention, decoder or attention,decoder (got '\(smoothing)')")
        }
        guard WeightRounding(rawValue: rounding) != nil else { throw ValidationError("--rounding must be data or nearest") }
        guard BiasCorrectionMode(rawValue: biasCorrection) != nil else { throw ValidationError("--bias-correction must be output, weights or none") }
    }

    func run() throws {
        let started = Date()
        // Where the results go is checked before any work: the model and the report must not replace the
        // fp32 model, and their folder must exist and be writable.
        let reportBase = report ?? (Path.pathExtension(out) == "safetensors" ? Path.deletingPathExtension(out) : out) + ".report"
        // A run that does not hold --max-drop writes no model, and its report goes under ".failed": the report
        // already at reportBase describes the model still at --out.
        let failedReportBase = reportBase + ".failed"
        let reportPaths = [reportBase, failedReportBase].flatMap { [$0 + ".json", $0 + ".md"] }
        for (path, option) in [(out, "--out")] + reportPaths.map({ ($0, "--report") }) {
            try OutputPaths.checkWritable(path, option: option)
            try OutputPaths.refuseOverwriting(OutputPaths.modelFiles(model), with: path, option: option)
        }
        for path in reportPaths where OutputPaths.sameFile(path, out) {
            throw ToolError("--report \(report ?? reportBase): the report \(path) would be --out \(out), replacing the model; "
                + "choose another --report")
        }
        let source = try ModelSource(path: model)
        source.warnings.forEach(ModelWarnings.standardError)
        guard source.quantization == nil else { throw ToolError("\(model) is already an int8 model") }
        let d = source.description
        let input = size.map { InputSize(width: $0.width, height: $0.height) } ?? d.input ?? InputSize(width: 512, height: 512)
        try EngineFactory.checkBudget(source: source, height: input.height, width: input.width, threads: threads, int8: false, budget: limits.memory)
        let fp32 = try MTLSegFormerWeights(source: source)
        let rangeMethod = try parseMethod()
        if let declared = d.input, declared != input {
            writeToStandardError("note: calibrating at \(input.width)x\(input.height); the int8 model will declare that size "
                + "(the fp32 model declares \(declared.width)x\(declared.height)), and the daemon will run it at that size\n")
        }
        let stages = d.encoder.stageCount
        if let wideDecoderInputs, wideDecoderInputs > stages - 1 {
            throw ToolError("--wide-decoder-inputs \(wideDecoderInputs): \(model) has \(stages) encoder stages, and the first "
                + "stage's decoder input is never read at 16 bits: at most \(stages - 1)")
        }
        let labelMaps = try labels.map { try LabelMaps(folder: $0, tasks: d.tasks, budget: limits.pixels) }

        // The images: unreadable ones are skipped with a warning naming them; none usable is an error.
        let listed = try ImageList.paths(images, option: "--images")
        guard !listed.isEmpty else { throw ToolError("\(images): no PNG or JPEG images") }
        let preprocessor = ModelInputPreprocessor(targetWidth: input.width, targetHeight: input.height, mean: d.mean, std: d.std)
        var skipped: [String] = []
        var imageSizes: [String: (width: Int, height: Int)] = [:]  // for the label maps' check
        let reader = { (path: String, target: UnsafeMutablePointer<Float>) -> Bool in
            guard !skipped.contains(path) else { return false }
            do {
                let image = try ImageFile.read(path: path, budget: limits.pixels)
                imageSizes[path] = (image.width, image.height)
                preprocessor.process(image, into: target)
                return true
            } catch {
                skipped.append(path)
                writeToStandardError("\nwarning: skipping \(error)\n")
                return false
            }
        }
        if evalImages == nil && listed.count < 2 {
            throw ToolError("--images \(images): one image; calibration needs two or more, so that int8 is judged on images it was "
                + "not calibrated on (or give those with --eval-images)")
        }
        let (calibrationPaths, evalPaths) = try evalImages.map { (listed, try ImageList.paths($0, option: "--eval-images")) } ?? Self.split(listed, share: evalSplit, seed: seed)
        guard !evalPaths.isEmpty else { throw ToolError("\(evalImages ?? images): no PNG or JPEG images to evaluate on") }
        let progress = Progress()
        let evaluator = try AccuracyEvaluator(fp32Weights: fp32, width: input.width, height: input.height, count: evalPaths.count,
                                              input: { reader(evalPaths[$0], $1) },
                                              labels: { i, t in
                                                  guard let map = try labelMaps?.map(for: evalPaths[i], task: t) else { return nil }
                                                  try Self.checkLabelSize(map, of: evalPaths[i], size: imageSizes[evalPaths[i]])
                                                  return map
                                              })
        labelMaps?.reportCoverage(heldOut: evalPaths.filter { !skipped.contains($0) }.count)
        guard evalPaths.contains(where: { !skipped.contains($0) }) || calibrationPaths.contains(where: { !skipped.contains($0) }) else {
            throw ToolError("\(images): none of the \(listed.count) images could be read")
        }
        guard evalPaths.contains(where: { !skipped.contains($0) }) else {
            throw ToolError("\(evalImages.map { "--eval-images \($0)" } ?? "--images \(images)"): none of the \(evalPaths.count) held-out "
                + "image(s) could be read, so int8 would be judged on nothing; give more images")
        }
        let calibrationSet = Set(calibrationPaths.map(Path.resolvingFolder))
        let shared = evalPaths.filter { calibrationSet.contains(Path.resolvingFolder($0)) }.count
        if shared > 0 {
            writeToStandardError("warning: \(shared) of the \(evalPaths.count) images of --eval-images are calibration images too: "
                + "int8 is judged partly on images it was calibrated on\n")
        }
        let info = CalibrationInfo(method: rangeMethod.description, images: calibrationPaths.count, width: input.width, height: input.height,
                                   sourceModel: Path.lastComponent(model), createdAt: Date().formatted(.iso8601),
                                   evalImages: evalPaths.count)
        let session = CalibrationSession(fp32: fp32, width: input.width, height: input.height,
                                         options: CalibrationSession.Options(method: rangeMethod, maxDrop: maxDrop,
                                                                             attentionInInt8: attention == "int8",
                                                                             rounding: WeightRounding(rawValue: rounding)!,
                                                                             biasCorrection: BiasCorrectionMode(rawValue: biasCorrection)!,
                                                                             compareTechniques: compareTechniques,
                                                                             smoothing: SmoothingSites(parsing: smoothing)!,
                                                                             wideDecoderInputs: wideDecoderInputs ?? 2))
        var result: CalibrationSession.Result
        do {
            result = try session.run(calibrationCount: calibrationPaths.count, calibration: { reader(calibrationPaths[$0], $1) },
                                     evaluator: evaluator, info: info, progress: progress.show)
        } catch is NoUsableImages {
            progress.finish()
            throw ToolError("\(images): none of the \(calibrationPaths.count) calibration images could be read")
        }
        progress.finish()
        let usedCalibration = calibrationPaths.filter { !skipped.contains($0) }.count
        guard usedCalibration > 0 else { throw ToolError("\(images): none of the \(calibrationPaths.count) calibration images could be read") }
        var record = result.model.record
        record.calibration.images = usedCalibration
        record.calibration.evalImages = evalPaths.filter { !skipped.contains($0) }.count
        result.model = QuantizedModel(weights: result.model.weights, record: record)

        var latency: (fp32: Double, int8: Double)?
        if result.budgetHeld {
            try Int8ModelWriter.write(result.model, to: out)
            latency = try Self.latencies(fp32: fp32, model: result.model, width: input.width, height: input.height, threads: threads)
        }
        var summary = CalibrationReport(model: model, output: out, method: rangeMethod.description, width: input.width, height: input.height,
                                        calibrationImages: usedCalibration, evalImages: record.calibration.evalImages ?? 0,
                                        skippedImages: skipped, maxDrop: maxDrop, budgetHeld: result.budgetHeld, failure: result.failure,
                                        tasks: result.accuracy, layers: result.layers, fallbacks: record.calibration.fallbacks ?? [],
                                        seconds: Date().timeIntervalSince(started), fp32MedianMilliseconds: latency?.fp32,
                                        int8MedianMilliseconds: latency?.int8, threads: threads)
        summary.attention = attention
        summary.activationsOnly = result.activationsOnly
        summary.rounding = rounding
        summary.biasCorrection = biasCorrection
        summary.techniques = result.techniques
        summary.refinement = result.refinement
        summary.smoothing = result.smoothing
        summary.smoothingSites = SmoothingSites(parsing: smoothing)!.description
        summary.wideDecoderInputs = result.model.record.wideDecoderInputs ?? []
        let writtenReport = result.budgetHeld ? reportBase : failedReportBase
        try FileReplacement.replace(writtenReport + ".json", with: summary.json())
        try FileReplacement.replace(writtenReport + ".md", with: summary.markdown().utf8)
        // A failed attempt's report would otherwise sit beside the model that this run wrote.
        if result.budgetHeld { for ext in [".json", ".md"] { unlink(failedReportBase + ext) } }
        for task in result.accuracy {
            print(String(cFormat: "%@: agreement %.2f%%, agreement-mIoU %.2f%@", task.task, task.agreement * 100, task.agreementMIoU,
                         task.int8MIoU.map { String(cFormat: ", mIoU int8 %.2f (fp32 %.2f)", $0, task.fp32MIoU ?? 0) } ?? ""))
        }
        print("fp32 fallbacks: \(summary.fallbacks.isEmpty ? "none" : summary.fallbacks.joined(separator: ", "))")
        print("report: \(writtenReport).md, \(writtenReport).json")
        guard result.budgetHeld else { throw ToolError("budget not held, no model written: \(result.failure ?? "")") }
        print("\(out): int8, \(usedCalibration) calibration images at \(input.width)x\(input.height), \(rangeMethod) ranges")
    }

    /// A label map gives a class per pixel of its image, so it has the image's size: another size is almost surely
    /// another image's map (the mIoU would be of a resized prediction against it, and wrong without a word).
    static func checkLabelSize(_ map: (width: Int, height: Int, classes: [UInt8]), of image: String,
                               size: (width: Int, height: Int)?) throws {
        guard let size, (map.width, map.height) != (size.width, size.height) else { return }
        throw ToolError("--labels: the map of \(image) is \(map.width)x\(map.height), the image \(size.width)x\(size.height); "
            + "a label map has its image's size (a class id per pixel)")
    }

    private func parseMethod() throws -> RangeMethod {
        if percentile != nil && method != "percentile" {
            throw ValidationError("--percentile is for --method percentile (the method is \(method))")
        }
        switch method {
        case "minmax": return .minMax
        case "mse": return .mse
        case "entropy": return .entropy
        case "percentile":
            let kept = percentile ?? 99.99
            guard kept > 50 && kept <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
            return .percentile(tail: (100 - kept) / 100)
        default: throw ValidationError("--method must be mse, entropy, percentile or minmax (got '\(method)')")
        }
    }

    /// A seeded shuffle, then the first `share` (at least one image; `paths` holds two or more) held out.
    static func split(_ paths: [String], share: Double, seed: UInt64) -> (calibration: [String], evaluation: [String]) {
        precondition(paths.count > 1, "a split needs two images")
        var generator = SplitMix64(seed: seed)
        var shuffled = paths
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
            shuffled.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        let held = min(paths.count - 1, max(1, Int((Double(paths.count) * share).rounded())))
        return (Array(shuffled[held...]).sorted(), Array(shuffled[..<held]).sorted())
    }

    /// Median of 10 runs of each engine at the calibrated size.
    static func latencies(fp32: MTLSegFormerWeights, model: QuantizedModel, width: Int, height: Int, threads: Int) throws -> (Double, Double) {
        func median(_ engine: SegmentationEngine) -> Double {
            let input = FloatBuffer(count: fp32.description.encoder.numChannels * width * height)
            engine.run(input: input.pointer)
            var times: [Double] = []
            for _ in 0 ..< 10 {
                let start = DispatchTime.now().uptimeNanoseconds
                engine.run(input: input.pointer)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            return times.sorted()[5]
        }
        setMatrixThreads(threads)
        let fp32Time = median(FP32Engine(weights: fp32, height: height, width: width))
        setMatrixThreads(1)
        return (fp32Time, median(try model.makeEngine(height: height, width: width, threads: threads)))
    }
}


/// A progress bar on a terminal; plain lines at each tenth otherwise.
final class Progress {
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastStage = ""
    private var lastTenth = -1

    func show(_ stage: String, _ done: Int, _ total: Int) {
        let total = max(total, 1)
        if terminal {
            let width = 30, filled = done * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            writeToStandardError("\r\(String(cFormat: "%-18@", stage).prefix(18)) [\(bar)] \(done)/\(total)")
        } else {
            let tenth = done * 10 / total
            if stage != lastStage || tenth != lastTenth {
                writeToStandardError("\(stage): \(done)/\(total)\n")
            }
            lastTenth = tenth
        }
        lastStage = stage
    }

    func finish() {
        if terminal { writeToStandardError("\n") }
    }
}
