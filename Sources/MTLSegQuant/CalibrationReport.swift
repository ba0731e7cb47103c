#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCore

/// What `mtlseg calibrate` did and measured, written as JSON and as Markdown.
public struct CalibrationReport: Codable {
    public var model: String
    public var output: String
    public var method: String
    /// Attention's two matrix products: "int8" or "fp32".
    public var attention: String = "int8"
    public var width: Int
    public var height: Int
    public var calibrationImages: Int
    public var evalImages: Int
    public var skippedImages: [String]
    public var maxDrop: Double?
    public var budgetHeld: Bool
    public var failure: String?
    public var tasks: [TaskAccuracy]
    /// Per task, with every layer's weights in fp32 and only the activations quantized.
    public var activationsOnly: [TaskAccuracy] = []
    /// How the weights were rounded and what the biases took back (`WeightRounding`, `BiasCorrectionMode`).
    public var rounding = "nearest"
    public var biasCorrection = "weights"
    /// The accuracy of every combination of rounding and bias correction, before fallbacks.
    public var techniques: [CalibrationSession.TechniqueAccuracy] = []
    /// Per layer, what refining its weights changed.
    public var refinement: [WeightRefinement.LayerEffect] = []
    /// Where activations were smoothed (`SmoothingSites`), and per smoothed layer the choice (empty: off).
    public var smoothingSites = "none"
    /// Stages whose decoder projection reads their output at 16 bits (`QuantizationRecord.wideDecoderInputs`).
    public var wideDecoderInputs: [Int] = []
    public var smoothing: [ChannelSmoothing.Choice] = []
    public var layers: [CalibrationSession.LayerReport]
    public var fallbacks: [String]
    public var seconds: Double
    public var fp32MedianMilliseconds: Double?
    public var int8MedianMilliseconds: Double?
    public var threads: Int

    enum CodingKeys: String, CodingKey {
        case model, output, method, attention, width, height, calibrationImages = "calibration_images", evalImages = "eval_images"
        case skippedImages = "skipped_images", maxDrop = "max_drop", budgetHeld = "budget_held", failure, tasks, activationsOnly = "activations_only", layers, fallbacks, seconds
        case rounding, biasCorrection = "bias_correction", techniques, refinement, smoothing, smoothingSites = "smoothing_sites"
        case wideDecoderInputs = "wide_decoder_inputs"
        case fp32MedianMilliseconds = "fp32_median_ms", int8MedianMilliseconds = "int8_median_ms", threads
    }

    public init(model: String, output: String, method: String, width: Int, height: Int, calibrationImages: Int, evalImages: Int,
                skippedImages: [String], maxDrop: Double?, budgetHeld: Bool, failure: String?, tasks: [TaskAccuracy],
                layers: [CalibrationSession.LayerReport], fallbacks: [String], seconds: Double, fp32MedianMilliseconds: Double?,
                int8MedianMilliseconds: Double?, threads: Int) {
        self.model = model
        self.output = output
        self.method = method
        self.width = width
        self.height = height
        self.calibrationImages = calibrationImages
        self.evalImages = evalImages
        self.skippedImages = skippedImages
        self.maxDrop = maxDrop
        self.budgetHeld = budgetHeld
        self.failure = failure
        self.tasks = tasks
        self.layers = layers
        self.fallbacks = fallbacks
        self.seconds = seconds
        self.fp32MedianMilliseconds = fp32MedianMilliseconds
        self.int8MedianMilliseconds = int8MedianMilliseconds
        self.threads = threads
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public func markdown() -> String {
        var lines = ["# Calibration report: \(model)", ""]
        lines.append("- output: `\(output)`" + (budgetHeld ? "" : " (not written: the budget was not held)"))
        lines.append("- method: \(method); input \(width)x\(height); attention products in \(attention)")
        lines.append("- weights: rounding \(rounding), bias correction \(biasCorrection), smoothing \(smoothingSites)")
        lines.append("- decoder inputs read at 16 bits: " + (wideDecoderInputs.isEmpty ? "none" : wideDecoderInputs.map { "stage \($0 + 1)" }.joined(separator: ", ")))
        lines.append("- images: \(calibrationImages) for ranges, \(evalImages) held out for evaluation" +
                     (skippedImages.isEmpty ? "" : "; skipped (unreadable): \(skippedImages.joined(separator: ", "))"))
        lines.append("- budget: " + (maxDrop.map { String(cFormat: "at most %.2f agreement-mIoU points lost per task", $0) } ?? "none"))
        if let failure { lines.append("- **budget not held**: \(failure)") }
        lines.append("- fp32 fallbacks: " + (fallbacks.isEmpty ? "none" : fallbacks.map { "`\($0)`" }.joined(separator: ", ")))
        lines.append(String(cFormat: "- time taken: %.1f s", seconds))
        if let fp32 = fp32MedianMilliseconds, let int8 = int8MedianMilliseconds {
            lines.append(String(cFormat: "- latency on this machine (%d thread%@, median): fp32 %.2f ms, int8 %.2f ms (%.2f×)",
                                threads, threads == 1 ? "" : "s", fp32, int8, fp32 / int8))
        }
        lines += ["", "## Tasks (int8 against fp32 on the held-out images)", "",
                  "| task | pixel agreement | agreement-mIoU | mIoU fp32 (labels) | mIoU int8 (labels) |", "|---|---|---|---|---|"]
        for t in tasks {
            lines.append(String(cFormat: "| %@ | %.2f %% | %.2f | %@ | %@ |", t.task, t.agreement * 100, t.agreementMIoU,
                                t.fp32MIoU.map { String(cFormat: "%.2f", $0) } ?? "–", t.int8MIoU.map { String(cFormat: "%.2f", $0) } ?? "–"))
        }
        if !activationsOnly.isEmpty {
            lines += ["", "## What limits the accuracy", "",
                      "The same evaluation with every layer's weights in fp32, only the activations quantized:", ""]
            for (t, a) in zip(tasks, activationsOnly) {
                let weights = a.agreementMIoU - t.agreementMIoU
                lines.append(String(cFormat: "- %@: agreement %.2f %%, agreement-mIoU %.2f — the activations' u8 grids cost %.2f points, "
                                    + "the int8 weights %.2f more%@", t.task, a.agreement * 100, a.agreementMIoU, 100 - a.agreementMIoU, weights,
                                    weights > 100 - a.agreementMIoU ? " (the weights limit it: a budget can move layers to fp32)"
                                        : " (the activations limit it: try another --method, or richer calibration images)"))
            }
        }
        if !techniques.isEmpty {
            lines += ["", "## What each weight technique buys (before any fallback)", "",
                      "| rounding | bias correction | " + tasks.map { "\($0.task): agreement | agreement-mIoU" }.joined(separator: " | ") + " |",
                      "|---|---|" + String(repeating: "---|---|", count: tasks.count)]
            for t in techniques {
                let chosen = t.rounding == rounding && t.biasCorrection == biasCorrection
                lines.append("| \(t.rounding) | \(t.biasCorrection)\(chosen ? " (used)" : "") | "
                             + t.tasks.map { String(cFormat: "%.2f %% | %.2f", $0.agreement * 100, $0.agreementMIoU) }.joined(separator: " | ") + " |")
            }
        }
        if !smoothing.isEmpty {
            lines += ["", "## Smoothing per layer", "",
                      "For each layer whose input was smoothed (attention's output projections; the decoder's projections, one per stage "
                      + "output; the fused map's classifier or task maps), α chosen (0: none) and the output noise it was predicted to remove.", "",
                      "| layer | α | predicted gain (dB) |", "|---|---|---|"]
            for c in smoothing { lines.append(String(cFormat: "| `%@` | %.2f | %.1f |", c.layer, c.alpha, c.predictedGain)) }
        }
        if !refinement.isEmpty {
            lines += ["", "## Weight refinement per layer (on the calibration inputs, worst first)", "",
                      "SQNR of the layer's output with only its weights quantized, rounded to nearest and as used; the mean output "
                      + "shift its bias took back, in dB below the output's RMS (lower: a larger shift).", "",
                      "| layer | SQNR nearest (dB) | SQNR used (dB) | shift corrected (dB) |", "|---|---|---|---|"]
            func dB(_ x: Double?) -> String { x.map { String(cFormat: "%.1f", $0) } ?? "–" }
            for e in refinement.sorted(by: { ($0.nearestSQNR ?? .infinity) < ($1.nearestSQNR ?? .infinity) }) {
                lines.append("| `\(e.name)` | \(dB(e.nearestSQNR)) | \(dB(e.roundedSQNR)) | \(dB(e.correctedShift)) |")
            }
        }
        lines += ["", "## Layers, worst first (SQNR of the layer's output with its input and weights quantized)", "",
                  "| layer | SQNR (dB) | runs in |", "|---|---|---|"]
        for layer in layers.sorted(by: { ($0.sqnr ?? .infinity) < ($1.sqnr ?? .infinity) }) {
            lines.append("| `\(layer.name)` | \(layer.sqnr.map { String(cFormat: "%.1f", $0) } ?? "–") | \(layer.fallback ? "fp32" : "int8") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
