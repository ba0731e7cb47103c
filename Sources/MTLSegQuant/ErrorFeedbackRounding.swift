#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// Int8 weights rounded with the calibration data in view (OPTQ/GPTQ, Frantar et al. 2022): the inputs
/// one at a time, each weight of the row rounded to the nearest step, and its rounding error pushed onto the
/// row's weights not yet rounded, in the proportions that cancel it best on the calibration inputs.
///
/// Rounding to nearest makes each weight's error small; what matters is the layer's output error
/// E‖(W − W_q)·x‖² = Σ_o (w_o − q_o)ᵀ·H·(w_o − q_o), H = E[x·xᵀ]. With correlated inputs (LayerNorm and GELU
/// outputs are), errors of neighbouring weights can cancel; this finds such roundings greedily, with the
/// inverse of H (Cholesky) saying where each error goes. Scales are the ones `QuantizedTensor` chose.
public enum ErrorFeedbackRounding {
    /// Dampening added to H's diagonal, as a share of its mean diagonal: keeps H invertible where the calibration
    /// rows do not span every direction, and the updates tame.
    public static let dampening = 0.01

    /// The int8 values of `weights` ([out][in], row-major) on the per-row `scale`, given the input's second
    /// moments `secondMoment` ([in][in]). nil when H cannot be factorised.
    public static func values(weights: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int, scale: [Float],
                              secondMoment: [Double]) -> [Int8]? {
        var h = secondMoment
        var meanDiagonal = 0.0
        for i in 0 ..< k { meanDiagonal += h[i * k + i] }
        meanDiagonal /= Double(max(k, 1))
        guard meanDiagonal > 0, meanDiagonal.isFinite else { return nil }
        // An input never seen non-zero: its weight's error costs nothing; a unit diagonal keeps H invertible.
        for i in 0 ..< k where h[i * k + i] == 0 { h[i * k + i] = 1 }
        for i in 0 ..< k { h[i * k + i] += dampening * meanDiagonal }
        guard let u = upperFactorOfInverse(h, k) else { return nil }

        var values = [Int8](repeating: 0, count: n * k)
        var w = [Double](repeating: 0, count: k)
        u.withUnsafeBufferPointer { u in
            w.withUnsafeMutableBufferPointer { w in
                for o in 0 ..< n {
                    let s = Double(scale[o])
                    guard s > 0 else { continue }
                    for i in 0 ..< k { w[i] = Double(weights[o * k + i]) }
                    for i in 0 ..< k {
                        let q = max(-127, min(127, (w[i] / s).rounded(.toNearestOrEven)))
                        values[o * k + i] = Int8(q)
                        let error = (w[i] - q * s) / u[i * k + i]
                        guard error != 0 else { continue }
                        let row = i * k
                        for j in i + 1 ..< k { w[j] -= error * u[row + j] }
                    }
                }
            }
        }
        return values
    }

    /// U, upper triangular, with H⁻¹ = Uᵀ·U: the Cholesky factor of H⁻¹, whose row i says how the error of
    /// input i is best spread over inputs i+1… once inputs 0…i are fixed.
    static func upperFactorOfInverse(_ h: [Double], _ k: Int) -> [Double]? {
        guard let l = cholesky(h, k) else { return nil }
        // X = L⁻¹ (lower triangular), row by row: X[r] = (e_r − Σ_{t<r} L[r][t]·X[t]) / L[r][r].
        var inverse = [Double](repeating: 0, count: k * k)
        var hInverse = [Double](repeating: 0, count: k * k)
        l.withUnsafeBufferPointer { l in
            inverse.withUnsafeMutableBufferPointer { x in
                for r in 0 ..< k {
                    x[r * k + r] = 1
                    for t in 0 ..< r {
                        let f = l[r * k + t]
                        guard f != 0 else { continue }
                        for c in 0 ... t { x[r * k + c] -= f * x[t * k + c] }
                    }
                    let d = l[r * k + r]
                    for c in 0 ... r { x[r * k + c] /= d }
                }
                // H⁻¹ = Xᵀ·X, as the sum of the outer products of X's rows (upper half, then mirrored).
                hInverse.withUnsafeMutableBufferPointer { hi in
                    for t in 0 ..< k {
                        for i in 0 ... t {
                            let f = x[t * k + i]
                            guard f != 0 else { continue }
                            for j in i ... t { hi[i * k + j] += f * x[t * k + j] }
                        }
                    }
                    for i in 0 ..< k {
                        for j in 0 ..< i { hi[i * k + j] = hi[j * k + i] }
                    }
                }
            }
        }
        guard let lower = cholesky(hInverse, k) else { return nil }
        var u = [Double](repeating: 0, count: k * k)
        for i in 0 ..< k {
            for j in i ..< k { u[i * k + j] = lower[j * k + i] }
        }
        return u
    }

    /// L, lower triangular, with A = L·Lᵀ; nil when A is not positive definite.
    static func cholesky(_ a: [Double], _ k: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: k * k)
        let factorised = l.withUnsafeMutableBufferPointer { l -> Bool in
            a.withUnsafeBufferPointer { a -> Bool in
                for j in 0 ..< k {
                    var diagonal = a[j * k + j]
                    for t in 0 ..< j { diagonal -= l[j * k + t] * l[j * k + t] }
                    guard diagonal > 0, diagonal.isFinite else { return false }
                    let d = diagonal.squareRoot()
                    l[j * k + j] = d
                    for i in j + 1 ..< k {
                        var sum = a[i * k + j]
                        for t in 0 ..< j { sum -= l[i * k + t] * l[j * k + t] }
                        l[i * k + j] = sum / d
                    }
                }
                return true
            }
        }
        return factorised ? l : nil
    }
}
