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

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the model's forward pass on a preprocessed input (as the peers are timed).",
        discussion: """
            Prints median, p90 and min latency, executed GMAC/s and peak RSS; with --json the last line is one JSON object. \
            For an int8 model with task heads, also the heads' GMAC/s as a share of the cores' ceiling: the CPU's widest \
            8-bit dot-product instruction issued back to back, which no int8 product can beat.
            """)

    @Option(name: .long, help: "Model file (.safetensors) or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Input size WxH (default: the model's own, else 512x512).", transform: ImageSize.parse)
    var size: ImageSize?

    @Option(name: .long, help: "Threads for the matrix products.")
    var threads: Int = 1

    @Option(name: .long, help: "Timed forward passes (after 3 warm-up passes).")
    var iterations: Int = 20

    @Flag(name: .long, help: "End with one JSON line of the results.")
    var json = false

    @OptionGroup var limits: ResourceLimits

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        _ = try parsedMaskSizes()
    }

    private func parsedMaskSizes() throws -> [ImageSize]? {
        guard let maskSizes else { return nil }
        var sizes: [ImageSize] = []
        for text in maskSizes.split(separator: ",", omittingEmptySubsequences: false) {
            guard let size = ImageSize(argument: String(text)) else {
                throw ValidationError("--mask-sizes: '\(text)' is not \(ImageSize.expectation)")
            }
            if !sizes.contains(size) { sizes.append(size) }
        }
        return sizes
    }

    @Flag(name: .long, help: "Run an int8 model file through the fp32 engine (its dequantized weights).")
    var fp32 = false

    @Flag(name: .long, help: "Time runs that write only the masks (as the daemon's), not the logits.")
    var masksOnly = false

    @Option(name: .customLong("mask-sizes"), help: ArgumentHelp(
        "Also time masks at these sizes (comma-separated WxH, e.g. 640x480,1280x720), as the daemon makes them for HELLO mask_size.",
        discussion: "Per size: the median time to resize every task's logits and take the argmax; and once, the median extra time of a pass that writes the logits (which these masks need) over one that writes only the masks."))
    var maskSizes: String?

    func run() throws {
        let (engine, d) = try EngineFactory.open(path: model, size: size.map { InputSize(width: $0.width, height: $0.height) },
                                                 threads: threads, precision: fp32 ? .fp32 : .auto, budget: limits.memory)
        let input = InputSize(width: engine.plan.input.width, height: engine.plan.input.height)
        let cost = ModelCost(description: d, plan: engine.plan)
        // A fixed pseudo-random input: the timing does not depend on the values.
        let pixels = FloatBuffer(count: d.encoder.numChannels * input.width * input.height)
        var state: UInt32 = 12345
        for i in 0 ..< pixels.count {
            state = state &* 1_664_525 &+ 1_013_904_223
            pixels[i] = Float(state >> 8) / Float(1 << 24) * 4 - 2
        }
        engine.writesLogits = !masksOnly
        for _ in 0 ..< 3 { engine.run(input: pixels.pointer) }
        engine.profiling = true
        var times: [Double] = [], cpuTimes: [Double] = []
        var parts: [String: [Double]] = [:]
        var partOrder: [String] = []
        for _ in 0 ..< iterations {
            let cpuStart = Self.processCPUMilliseconds(), start = DispatchTime.now().uptimeNanoseconds
            engine.run(input: pixels.pointer)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            cpuTimes.append(Self.processCPUMilliseconds() - cpuStart)
            for (name, ms) in engine.stageMilliseconds {
                if parts[name] == nil { partOrder.append(name) }
                parts[name, default: []].append(ms)
            }
        }
        let median = Self.median(times)
        let sorted = times.sorted()
        let p90 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]
        let gmacs = Double(cost.executedMACs) / 1e9 / (median / 1e3)
        let sizedMasks = try timeSizedMasks(engine: engine, input: pixels)
        let rss = peakRSSMegabytes()
        let headsMedian = parts["heads"].map(Self.median)
        let headsGmacs = headsMedian.map { Double(cost.headsMACs) / 1e9 / ($0 / 1e3) }
        // The int8 heads against what the cores they ran on can do at all (measured after the timed passes).
        let ceiling = headsGmacs != nil && engine is Int8Engine ? DotProductCeiling.measure() : nil
        let cores = min(threads, ProcessInfo.processInfo.activeProcessorCount)
        print("model      \(model) (\(d.variant), \(d.tasks.count) task\(d.tasks.count == 1 ? "" : "s"), \(engine.precisionName))")
        print("input      \(input.width)x\(input.height), \(threads) thread\(threads == 1 ? "" : "s"), \(iterations) iterations")
        let cpuMedian = Self.median(cpuTimes)
        print(String(cFormat: "latency    median %.2f ms, p90 %.2f ms, min %.2f ms", median, p90, sorted[0]))
        print(String(cFormat: "cpu time   median %.2f ms per pass (all threads)", cpuMedian))
        print("stages     " + partOrder.map { String(cFormat: "%@ %.2f", $0, Self.median(parts[$0]!)) }.joined(separator: ", ") + " (median ms)")
        print(String(cFormat: "compute    %.3f GMAC executed, %.1f GMAC/s at the median", Double(cost.executedMACs) / 1e9, gmacs))
        if let headsMedian, let headsGmacs {
            print(String(cFormat: "heads      %.3f GMAC in %.2f ms, %.1f GMAC/s", Double(cost.headsMACs) / 1e9, headsMedian, headsGmacs)
                + (ceiling.map {
                    String(cFormat: " (%.0f %% of the ceiling of %d core%@, %.1f GMAC/s by %@ back to back)",
                           100 * headsGmacs / ($0.gmacsPerCore * Double(cores)), cores, cores == 1 ? "" : "s",
                           $0.gmacsPerCore * Double(cores), $0.instruction)
                } ?? ""))
        }
        if let sizedMasks {
            print(String(cFormat: "logits     writing them adds %.2f ms (median of %d alternating passes: %.2f ms with, %.2f ms without)",
                         sizedMasks.logitsWith - sizedMasks.logitsWithout, iterations, sizedMasks.logitsWith, sizedMasks.logitsWithout))
            for size in sizedMasks.sizes {
                print(String(cFormat: "masks at   %dx%d: %.2f ms per frame (%d task%@, median; p90 %.2f ms)", size.width, size.height, size.median,
                             d.tasks.count, d.tasks.count == 1 ? "" : "s", size.p90))
            }
        }
        print(String(cFormat: "memory     peak RSS %.1f MB", rss))
        if json {
            let report: [String: Any] = [
                "model": model, "precision": engine.precisionName, "width": input.width, "height": input.height, "threads": threads,
                "iterations": iterations, "median_ms": median, "p90_ms": p90, "min_ms": sorted[0],
                "median_cpu_ms": cpuMedian,
                "stages_median_ms": Dictionary(uniqueKeysWithValues: partOrder.map { ($0, Self.median(parts[$0]!)) }),
                "gmac_executed": Double(cost.executedMACs) / 1e9, "gmac_per_s": gmacs, "peak_rss_mb": rss,
                "heads_gmac": Double(cost.headsMACs) / 1e9, "heads_gmac_per_s": headsGmacs ?? 0, "masks_only": masksOnly,
                "dot_ceiling_gmac_per_s_per_core": ceiling?.gmacsPerCore ?? 0, "dot_ceiling_instruction": ceiling?.instruction ?? "",
                "sized_masks": sizedMasks.map { timing -> [String: Any] in
                    ["logits_extra_ms": timing.logitsWith - timing.logitsWithout,
                     "sizes": timing.sizes.map { ["width": $0.width, "height": $0.height, "median_ms": $0.median, "p90_ms": $0.p90] }]
                } ?? [:],
            ]
            print(String(decoding: try JSONObject.data(report), as: UTF8.self))
        }
    }

    /// For --mask-sizes: the extra cost of writing the logits, then per size the masks' (MaskUpsampler, as the daemon).
    private func timeSizedMasks(engine: SegmentationEngine, input: FloatBuffer)
        throws -> (logitsWith: Double, logitsWithout: Double, sizes: [(width: Int, height: Int, median: Double, p90: Double)])? {
        guard let sizes = try parsedMaskSizes() else { return nil }
        func milliseconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        engine.profiling = false
        // Alternating, so that a change in the machine's load falls on both alike.
        var with: [Double] = [], without: [Double] = []
        for _ in 0 ..< iterations {
            engine.writesLogits = false
            without.append(milliseconds { engine.run(input: input.pointer) })
            engine.writesLogits = true
            with.append(milliseconds { engine.run(input: input.pointer) })
        }
        let output = engine.plan.outputSize
        let classes = engine.logits.map { $0.shape[0] }.max() ?? 1
        var results: [(width: Int, height: Int, median: Double, p90: Double)] = []
        for size in sizes {
            let upsampler = MaskUpsampler(logitsWidth: output.width, logitsHeight: output.height, maxClasses: classes,
                                          width: size.width, height: size.height)
            let masks = engine.logits.map { _ in UnsafeMutablePointer<UInt8>.allocate(capacity: size.width * size.height) }
            defer { masks.forEach { $0.deallocate() } }
            var times: [Double] = []
            for iteration in 0 ..< iterations + 3 {
                let time = milliseconds {
                    for (t, logits) in engine.logits.enumerated() { upsampler.mask(logits: logits.pointer, classes: logits.shape[0], into: masks[t]) }
                }
                if iteration >= 3 { times.append(time) }
            }
            let sorted = times.sorted()
            results.append((size.width, size.height, Self.median(times), sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]))
        }
        return (Self.median(with), Self.median(without), results)
    }

    /// CPU time of the whole process so far: on a loaded machine, unlike the wall clock, it leaves out the time
    /// other processes held the CPU.
    static func processCPUMilliseconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) * 1e3 + Double(now.tv_nsec) / 1e6
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kilobytes / 1024
    }
    return 0
}
