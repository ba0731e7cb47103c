import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a model file holds: variant, tasks and classes, input size, parameters, MACs.")

    @Option(name: .long, help: "Model file (.safetensors) or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Input size WxH for the MAC count (default: the model's own, else 512x512).", transform: ImageSize.parse)
    var size: ImageSize?

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let source = try ModelSource(path: model)
        source.warnings.forEach(ModelWarnings.standardError)
        let weights = try MTLSegFormerWeights(source: source, floatWeights: source.quantization == nil)
        let d = source.description
        let input = size.map { InputSize(width: $0.width, height: $0.height) } ?? d.input ?? InputSize(width: 512, height: 512)
        let plan = ForwardPlan(description: d, height: input.height, width: input.width)
        let cost = ModelCost(description: d, plan: plan)
        if json {
            let report: [String: Any] = [
                "name": d.name, "variant": d.variant, "encoder_hidden_sizes": d.encoder.hiddenSizes, "depths": d.encoder.depths,
                "decoder_hidden_size": d.decoderHiddenSize,
                "tasks": d.tasks.map { ["name": $0.name, "classes": $0.classes] },
                "input": d.input.map { ["width": $0.width, "height": $0.height] } ?? JSONObject.null,
                "parameters": weights.parameterCount,
                "macs_at": ["width": input.width, "height": input.height],
                "macs": cost.definedMACs, "macs_executed": cost.executedMACs,
                "logits_size": ["width": plan.outputSize.width, "height": plan.outputSize.height],
                "precision": source.quantization == nil ? "fp32" : "int8",
                "calibration": source.quantization.map { q -> [String: Any] in
                    ["method": q.calibration.method, "images": q.calibration.images, "width": q.calibration.width,
                     "height": q.calibration.height, "source_model": q.calibration.sourceModel, "created_at": q.calibration.createdAt,
                     "quantized_activations": q.activations.count]
                } ?? JSONObject.null,
            ]
            let data = try JSONObject.data(report)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("model       \(model)")
        print("name        \(d.name)")
        print("variant     \(d.variant) (hidden \(d.encoder.hiddenSizes), depths \(d.encoder.depths), decoder \(d.decoderHiddenSize))")
        print("kind        \(d.tasks.count == 1 ? "SegFormer (one task)" : "MTLSegFormer (\(d.tasks.count) tasks, cross-task attention heads)")")
        for task in d.tasks {
            print("task        \(task.name): \(task.classes.count) classes (\(task.classes.joined(separator: ", ")))")
        }
        print("input       \(d.input.map { "\($0.width)x\($0.height)" } ?? "any (images run at their own size)")")
        if let q = source.quantization {
            let c = q.calibration
            // The decoder projections that read their input at 16 bits carry fp32 weights too, but are no fallbacks.
            let wide = Set((q.wideDecoderInputs ?? []).filter { $0 < weights.decoder.stageProjections.count }
                .map { weights.decoder.stageProjections[$0].name })
            let fallbacks = weights.int8Layers.filter { $0.quantized == nil && !wide.contains($0.name) }.count
            let count = weights.int8Layers.count - fallbacks - wide.count
            print("precision   int8: \(count) int8 layers (\(fallbacks) kept fp32"
                + (wide.isEmpty ? "" : ", \(wide.count) decoder projections at 16 bits: stages \((q.wideDecoderInputs ?? []).map { String($0 + 1) }.joined(separator: ", "))")
                + "), attention products in \(q.attentionInInt8 ? "int8" : "fp32"), \(q.activations.count) quantized activations")
            print("calibrated  \(c.method) ranges from \(c.images) images at \(c.width)x\(c.height), from \(c.sourceModel), \(c.createdAt)")
        } else {
            print("precision   fp32")
        }
        print("parameters  \(weights.parameterCount.formatted())")
        print(String(cFormat: "MACs        %.3f G at %dx%d as defined; %.3f G executed (decoder folded)",
                     Double(cost.definedMACs) / 1e9, input.width, input.height, Double(cost.executedMACs) / 1e9))
        print("logits      [K, \(plan.outputSize.height), \(plan.outputSize.width)] per task")
    }
}

extension Int {
    /// The number with its thousands separated by commas ("1,234,567"), for inspect's parameter count.
    func formatted() -> String {
        let digits = String(self)
        var out = ""
        for (i, ch) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }
}
