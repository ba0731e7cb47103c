#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// How much memory loading and running one model may take, and how a user raises it (named in the error).
public struct MemoryBudget: Equatable, Sendable, CustomStringConvertible {
    public var bytes: Int
    /// The option or setting that raises the budget, as the user writes it ("--memory-budget MB").
    public var raisedBy: String

    public init(megabytes: Int, raisedBy: String) {
        bytes = megabytes.multipliedReportingOverflow(by: 1 << 20).overflow ? .max : megabytes << 20
        self.raisedBy = raisedBy
    }

    /// The default: 2048 MiB, or half the machine's memory where that is less (an edge board with 2 GB).
    public static var defaultMegabytes: Int {
        let half = Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max)) >> 20)
        return max(64, min(2048, half))
    }

    public static func standard(raisedBy: String) -> MemoryBudget { MemoryBudget(megabytes: defaultMegabytes, raisedBy: raisedBy) }

    /// The machine's memory: no budget lets a model take more (an allocation past it fails, and the
    /// runtime's failure is a crash, not an error).
    public static var machineBytes: Int { Int(min(ProcessInfo.processInfo.physicalMemory, UInt64(Int.max))) }

    public var description: String { MemoryPlan.format(bytes) }
}

/// Loading or running a model would take more memory than its budget, or than the machine has.
public struct MemoryBudgetExceeded: Error, CustomStringConvertible, Equatable {
    public let model: String
    public let input: String
    public let plan: MemoryPlan
    public let budget: MemoryBudget
    /// The machine's memory, where the plan needs more than that (then raising the budget cannot help).
    public var machineBytes: Int?

    public var description: String {
        let needs = "\(model): at \(input) the model needs about \(MemoryPlan.format(plan.totalBytes)) (weights \(MemoryPlan.format(plan.weightBytes)), "
            + "activations \(MemoryPlan.format(plan.activationBytes)), input \(MemoryPlan.format(plan.inputBytes)))"
        if let machineBytes {
            return needs + ", more than this machine's memory (\(MemoryPlan.format(machineBytes))); use a smaller input size"
        }
        return needs + ", over the memory budget of \(budget); raise it with \(budget.raisedBy), or use a smaller input size"
    }
}

/// The memory one engine needs for a model at an input size, worked out from the description and the
/// file's tensor entries alone, before anything is allocated. Every product and sum saturates at Int.max
/// instead of overflowing, so a description that implies an absurd size yields a number over any budget
/// rather than a trap. The figures are estimates that err on the high side (they count the fp32
/// engine's arena, which the int8 engine's buffers stay within, plus per-thread scratch).
public struct MemoryPlan: Equatable, Sendable {
    public enum Engine: Sendable { case fp32, int8 }

    public let weightBytes: Int
    public let activationBytes: Int
    /// The preprocessed input image (fp32) the caller hands to the engine.
    public let inputBytes: Int
    public var totalBytes: Int { (SaturatingCount(weightBytes) + SaturatingCount(activationBytes) + SaturatingCount(inputBytes)).value }

    /// `height`×`width` is the engine's input; `entries` the model file's tensors.
    public init(description d: ModelDescription, height: Int, width: Int, entries: [SafeTensorsEntry], engine: Engine, threads: Int) {
        // Weights as the engine holds them: fp32 tensors, int8 ones with their packed copy; the
        // load-time rewrites (repacking, folds) hold a second copy of a layer while they run.
        var weights = SaturatingCount(0)
        for entry in entries {
            let elements = entry.shape.reduce(SaturatingCount(1)) { $0 * SaturatingCount($1) }
            let bytesEach = entry.dtype == .I8 ? (engine == .int8 ? 2 : 5) : 8
            weights = weights + elements * SaturatingCount(bytesEach)
        }

        // ForwardPlan's sizes, worked out in saturating arithmetic, plus every task's logits (the engine
        // hands them all out at once).
        let sizes = ForwardSizes<SaturatingCount>(description: d, height: height, width: width)
        let decoderWidth = SaturatingCount(d.decoderHiddenSize)
        let allClasses = SaturatingCount(d.tasks.map(\.classes.count).reduce(0, +))
        var floats = sizes.arenaFloats(taskCount: d.tasks.count) + sizes.gates * allClasses
        if engine == .int8 {
            // The int8 engine's per-thread scratch (score block, depthwise rows, a decoder band and row) and its
            // lower-resolution decoder projections.
            let later = sizes.stages.dropFirst()
            let laterWidths = later.reduce(SaturatingCount(0)) { $0 + $1.width }
            let laterPixels = later.reduce(SaturatingCount(0)) { $0 + $1.pixels }
            let maxHidden = sizes.stages.map(\.hiddenChannels).max() ?? SaturatingCount(0)
            let perThread = sizes.scores + SaturatingCount(2) * maxHidden + SaturatingCount(1 << 17) + laterWidths * decoderWidth
            floats = floats + SaturatingCount(max(threads, 1)) * perThread + laterPixels * decoderWidth
        }
        weightBytes = weights.value
        activationBytes = (floats * SaturatingCount(4)).value
        inputBytes = (sizes.image * SaturatingCount(4)).value
    }

    /// Throws `MemoryBudgetExceeded` when the plan does not fit `budget` (a saturated plan never does), or,
    /// within a budget raised past the machine's memory, does not fit `machineBytes`.
    public func check(_ budget: MemoryBudget, model: String, input: MapSize, machineBytes: Int = MemoryBudget.machineBytes) throws {
        let size = "\(input.width)x\(input.height)"
        guard totalBytes < Int.max, totalBytes <= budget.bytes else {
            throw MemoryBudgetExceeded(model: model, input: size, plan: self, budget: budget)
        }
        guard totalBytes <= machineBytes else {
            throw MemoryBudgetExceeded(model: model, input: size, plan: self, budget: budget, machineBytes: machineBytes)
        }
    }

    /// "1.5 GiB", "320 MiB"; "more than 8 EiB" for a saturated count.
    public static func format(_ bytes: Int) -> String {
        if bytes == .max { return "more than 8 EiB" }
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : String(cFormat: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }
}
