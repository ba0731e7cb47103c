import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch

// Pieces of the forward pass that both engines run the same way.

/// Milliseconds per part of the last forward pass, when profiling is on (an engine's `stageMilliseconds`).
struct StageTimer {
    private(set) var laps: [(name: String, ms: Double)] = []
    var enabled = false
    private var clock: UInt64 = 0

    /// Forgets the last pass's laps and starts timing a new one.
    mutating func start() {
        laps.removeAll(keepingCapacity: true)
        clock = DispatchTime.now().uptimeNanoseconds
    }

    /// Ends the part called `name` (which is only made when profiling).
    mutating func lap(_ name: @autoclosure () -> String) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        laps.append((name(), Double(now - clock) / 1e6))
        clock = now
    }

    /// Adds a part timed elsewhere (within a part already ended: the fused heads' parts), without moving the clock.
    mutating func record(_ name: String, ms: Double) {
        guard enabled else { return }
        laps.append((name, ms))
    }
}

/// G_t = Σ_j sigmoid(w_self·F_t + w_other·F_j + b) ⊙ F_j over the gates of task t's head, in fp32, into `crossMap`.
/// `taskMaps` are the F_j ([n][d]); `gateSelf` and `gateOther` hold n floats each.
func accumulateCrossTaskMap(_ head: TaskHeadWeights, task t: Int, taskMaps: [UnsafeMutablePointer<Float>], pixels n: Int, width d: Int,
                            gateSelf: UnsafeMutablePointer<Float>, gateOther: UnsafeMutablePointer<Float>,
                            into crossMap: UnsafeMutablePointer<Float>) {
    crossMap.update(repeating: 0, count: n * d)
    // (Indices, not for-in over the gates: unspecialised, in debug builds, that allocates per element.)
    for g in head.gates.indices {
        let gate = head.gates[g]
        BLAS.linear(taskMaps[t], rows: n, inner: d, weight: gate.selfWeight.pointer, outputs: 1, into: gateSelf)
        BLAS.linear(taskMaps[gate.otherTask], rows: n, inner: d, weight: gate.otherWeight.pointer, outputs: 1, into: gateOther)
        ck_gate_accumulate_f32(gateSelf, gateOther, gate.bias, taskMaps[gate.otherTask], crossMap, n, d)
    }
}

/// softmax(q·kᵀ/√d)·v of every head for `rows` query rows, in fp32 (BLAS): queries and the output have
/// rows of `channels` floats (head h in columns h·d ..< (h+1)·d), keys and values `keyCount` such rows;
/// `scores` holds rows × keyCount floats.
func attendHeads(queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, rows: Int, keyCount m: Int,
                 channels c: Int, heads: Int, scores: UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>) {
    let d = c / heads, scale = 1 / Float(d).squareRoot()
    for head in 0 ..< heads {
        let offset = head * d
        BLAS.linear(queries + offset, rows: rows, inner: d, lda: c, weight: keys + offset, outputs: m, ldw: c, into: scores, ldc: m)
        ck_softmax_rows_f32(scores, rows, m, scale)
        BLAS.multiply(scores, rows: rows, inner: m, lda: m, values + offset, columns: d, ldb: c, into: output + offset, ldc: c)
    }
}
