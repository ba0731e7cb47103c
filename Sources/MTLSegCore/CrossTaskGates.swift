import CKernels

/// One task's cross-task gates as the int8 engine runs them: `ck_gate_concat_u8` turns F_t and the other tasks'
/// maps into the combine conv's u8 input [F_t | G_t] in one pass, with
/// G_t = Σ_j sigmoid(w_self·F_t + w_other·F_j + b) ⊙ F_j. The kernel's C arrays (the other maps, the gates' weights
/// and biases) are made once here, so that a frame allocates nothing.
final class CrossTaskGates {
    /// The weights the arrays point into (kept alive with them).
    private let head: TaskHeadWeights
    private let others: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let selfWeights: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let otherWeights: UnsafeMutablePointer<UnsafePointer<Float>?>
    private let bias: UnsafeMutablePointer<Float>

    /// Floats of scratch `run` needs, for heads of `tasks` tasks.
    static func scratchCount(tasks: Int) -> Int { Int(CK_GATE_CHUNK) * max(1, tasks - 1) }

    /// `maps[j]` is where task j's map F_j starts (rows `run`'s `ld` apart).
    init(_ head: TaskHeadWeights, maps: [UnsafePointer<Float>]) {
        precondition(!head.gates.isEmpty, "a task head of a multi-task model has a gate per other task")
        self.head = head
        let count = head.gates.count
        others = .allocate(capacity: count)
        selfWeights = .allocate(capacity: count)
        otherWeights = .allocate(capacity: count)
        bias = .allocate(capacity: count)
        for g in 0 ..< count {
            let gate = head.gates[g]
            others[g] = maps[gate.otherTask]
            selfWeights[g] = UnsafePointer(gate.selfWeight.pointer)
            otherWeights[g] = UnsafePointer(gate.otherWeight.pointer)
            bias[g] = gate.bias
        }
    }

    deinit {
        others.deallocate()
        selfWeights.deallocate()
        otherWeights.deallocate()
        bias.deallocate()
    }

    /// The first `pixels` pixels of F_t = `own` and of the other maps (rows `ld` floats apart in all) into rows of
    /// `ldo` bytes of `out`, quantized on the concatenation's grid. `scratch` holds `scratchCount` floats.
    func run(own: UnsafePointer<Float>, ld: Int, pixels: Int, channels: Int, grid: QuantParams, into out: UnsafeMutablePointer<UInt8>,
             ldo: Int, scratch: UnsafeMutablePointer<Float>) {
        ck_gate_concat_u8(own, others, ld, pixels, channels, head.gates.count, selfWeights, otherWeights, bias, grid.inverseScale,
                          grid.zeroPoint, out, ldo, scratch)
    }
}
