import ArgumentParser
import Foundation
import MTLSegCore
import MTLSegImage
import MTLSegQuant

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Quantize an fp32 model to int8, measuring activation ranges on a folder of images.",
        discussion: """
        Weights become symmetric int8 per output channel; each activation the int8 engine quantizes gets \
        an asymmetric u8 grid from the min/max seen over the images (preprocessed exactly as mtlseg infer \
        and the daemon do). The int8 file records the calibration in its metadata (mtlseg inspect shows it).

        Example:  mtlseg calibrate --model crops.safetensors --images frames/ --out crops-int8.safetensors
        """)

    @Option(name: .long, help: "The fp32 model file or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Folder of PNG/JPEG images, or a text file listing image paths.")
    var images: String

    @Option(name: .long, help: "Where to write the int8 model file.")
    var out: String

    @Option(name: .long, help: "Input size WxH (default: the model's own; an HF checkpoint needs it or uses 512x512).")
    var size: ImageSize?

    @Option(name: .long, help: "How activation ranges are chosen: minmax, percentile (see --percentile), mse.")
    var method: String = "mse"

    @Option(name: .long, help: "For --method percentile: the percentile kept at each end.")
    var percentile: Double = 99.99

    @Option(name: .long, help: "Also rank the activation points by the argmax agreement lost when only that point is quantized, on these images.")
    var sensitivityImages: String?

    func run() throws {
        let source = try ModelSource(path: model)
        guard source.quantization == nil else { throw ToolError("\(model) is already an int8 model") }
        let d = source.description
        let fp32 = try MTLSegFormerWeights(source: source)
        let input = size.map { InputSize(width: $0.width, height: $0.height) } ?? d.input ?? InputSize(width: 512, height: 512)
        let paths = try ImageList.paths(images)
        guard !paths.isEmpty else { throw ToolError("\(images): no PNG or JPEG images") }
        let preprocessor = ModelInputPreprocessor(targetWidth: input.width, targetHeight: input.height, mean: d.mean, std: d.std)
        let calibrator = Calibrator(weights: fp32, width: input.width, height: input.height)
        let rangeMethod: RangeMethod
        switch method {
        case "minmax": rangeMethod = .minMax
        case "percentile":
            guard percentile > 50 && percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
            rangeMethod = .percentile(tail: (100 - percentile) / 100)
        case "mse": rangeMethod = .mse
        default: throw ValidationError("--method must be minmax, percentile or mse (got '\(method)')")
        }
        let passes = rangeMethod == .minMax ? 1 : 2
        let start = Date()
        var unreadable = Set<Int>()
        let statistics = try calibrator.measure(count: paths.count, method: rangeMethod, input: { index, pixels in
            // An unreadable image is skipped with a warning (once, though a second pass asks again).
            guard !unreadable.contains(index) else { return false }
            do {
                preprocessor.process(try ImageFile.read(path: paths[index]), into: pixels)
                return true
            } catch {
                unreadable.insert(index)
                FileHandle.standardError.write(Data("\nwarning: skipping \(error)\n".utf8))
                return false
            }
        }, progress: { done in
            FileHandle.standardError.write(Data("\rcalibrating \(done)/\(passes * paths.count)".utf8))
        })
        FileHandle.standardError.write(Data("\n".utf8))
        let used = paths.count - unreadable.count
        guard used > 0 else { throw ToolError("\(images): none of the \(paths.count) images could be read") }
        let info = CalibrationInfo(method: rangeMethod.description, images: used, width: input.width, height: input.height,
                                   sourceModel: (model as NSString).lastPathComponent,
                                   createdAt: ISO8601DateFormatter().string(from: Date()))
        if let sensitivityImages {
            let inputs = try ImageList.paths(sensitivityImages).map { path -> FloatBuffer in
                let buffer = FloatBuffer(count: preprocessor.outputCount)
                preprocessor.process(try ImageFile.read(path: path), into: buffer.pointer)
                return buffer
            }
            let entries = ActivationSensitivity.measure(weights: fp32, grids: statistics.grids, inputs: inputs, width: input.width, height: input.height,
                                                        points: QuantPoint.all(for: d))
            let weightEntries = WeightSensitivity.measure(weights: fp32, inputs: inputs, width: input.width, height: input.height)
            for entry in (entries + weightEntries).sorted(by: { $0.agreement.min()! < $1.agreement.min()! }) {
                print(String(format: "%-56@ agreement %@", entry.point, entry.agreement.map { String(format: "%.2f%%", $0 * 100) }.joined(separator: " ")))
            }
        }
        let quantized = QuantizedModel(fp32: fp32, statistics: statistics, calibration: info)
        try Int8ModelWriter.write(quantized, to: out)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print(String(format: "%@: int8, %d images at %dx%d, %@ ranges, %.1f s; %.1f MB",
                     out, used, input.width, input.height, rangeMethod.description, Date().timeIntervalSince(start), Double(bytes) / 1e6))
    }
}
