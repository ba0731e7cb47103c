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
        discussion: "Prints median, p90 and min latency, executed GMAC/s and peak RSS; with --json the last line is one JSON object.")

    @Option(name: .long, help: "Model file (.safetensors) or HF checkpoint directory.")
    var model: String

    @Option(name: .long, help: "Input size WxH (default: the model's own, else 512x512).")
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
    }

    @Flag(name: .long, help: "Run an int8 model file through the fp32 engine (its dequantized weights).")
    var fp32 = false

    @Flag(name: .long, help: "Time runs that write only the masks (as the daemon's), not the logits.")
    var masksOnly = false

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
        let rss = peakRSSMegabytes()
        let headsMedian = parts["heads"].map(Self.median)
        let headsGmacs = headsMedian.map { Double(cost.headsMACs) / 1e9 / ($0 / 1e3) }
        print("model      \(model) (\(d.variant), \(d.tasks.count) task\(d.tasks.count == 1 ? "" : "s"), \(engine.precisionName))")
        print("input      \(input.width)x\(input.height), \(threads) thread\(threads == 1 ? "" : "s"), \(iterations) iterations")
        let cpuMedian = Self.median(cpuTimes)
        print(String(cFormat: "latency    median %.2f ms, p90 %.2f ms, min %.2f ms", median, p90, sorted[0]))
        print(String(cFormat: "cpu time   median %.2f ms per pass (all threads)", cpuMedian))
        print("stages     " + partOrder.map { String(cFormat: "%@ %.2f", $0, Self.median(parts[$0]!)) }.joined(separator: ", ") + " (median ms)")
        print(String(cFormat: "compute    %.3f GMAC executed, %.1f GMAC/s at the median", Double(cost.executedMACs) / 1e9, gmacs))
        if let headsMedian, let headsGmacs {
            print(String(cFormat: "heads      %.3f GMAC in %.2f ms, %.1f GMAC/s", Double(cost.headsMACs) / 1e9, headsMedian, headsGmacs))
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
            ]
            print(String(decoding: try JSONObject.data(report), as: UTF8.self))
        }
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
