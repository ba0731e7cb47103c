import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// What the calibration images say about each int8 layer's input beyond its range, gathered in one more fp32
/// pass once the activation grids are known:
/// - the second moments E[x·xᵀ] of the layer's input rows (a conv's patches for a conv), which weigh each
///   weight's rounding error by how the data excites it (`ErrorFeedbackRounding`);
/// - the mean of every input feature, exact and on its u8 grid, from which the int8 product's mean shift
///   follows (`WeightRefinement.meanShift`, for `BiasCorrectionMode.weights` and `.output`).
///
/// Memory is k² + 2k doubles per distinct layer input (k: the layer's input width), however many images pass;
/// layers reading the same input (key and value) share it. The head's combine conv, whose input is a
/// concatenation of two observations, is not covered.
public final class LayerInputStatistics: ActivationObserver {
    /// The gathered moments of one layer input.
    public struct Moments {
        public let features: Int
        /// Rows seen.
        public internal(set) var rows = 0
        /// Σ x·xᵀ, [features][features].
        public internal(set) var outerSums: [Double]
        public internal(set) var sums: [Double]
        /// Σ of x on its u8 grid.
        public internal(set) var quantizedSums: [Double]

        init(features: Int) {
            self.features = features
            outerSums = [Double](repeating: 0, count: features * features)
            sums = [Double](repeating: 0, count: features)
            quantizedSums = sums
        }

        /// E[x·xᵀ].
        public var secondMoment: [Double] { outerSums.map { $0 / Double(max(rows, 1)) } }
        public var mean: [Double] { sums.map { $0 / Double(max(rows, 1)) } }
        public var quantizedMean: [Double] { quantizedSums.map { $0 / Double(max(rows, 1)) } }
    }

    /// How a layer sees its input point: the point's own rows, or a conv's k×k patches of the point's map.
    private struct View {
        let point: QuantPoint
        let kernel, stride, padding: Int
        let input, output: MapSize?

        var key: String { input == nil ? point.name : "\(point.name)#\(kernel)/\(stride)" }
    }

    private let grids: [QuantPoint: QuantParams]
    private var views: [QuantPoint: [View]] = [:]
    private var viewOfLayer: [String: String] = [:]
    public private(set) var moments: [String: Moments] = [:]
    /// Rows taken from one observation (evenly spaced), bounding the cost of the second moments.
    private let rowsPerObservation: Int

    /// `plan` gives the map sizes convs need; `grids` are the activation grids the int8 model will use.
    public init(weights: MTLSegFormerWeights, grids: [QuantPoint: QuantParams], plan: ForwardPlan, rowsPerObservation: Int = 1024) {
        self.grids = grids
        self.rowsPerObservation = rowsPerObservation
        for (layer, point) in weights.int8LayerInputs where !point.isConcatenation {
            var view = View(point: point, kernel: 1, stride: 1, padding: 0, input: nil, output: nil)
            if case let .conv(kernel, _) = layer.layout, let stage = point.stage {
                let map = plan.stageSizes[stage]
                if point == QuantPoint.stageOutput(stage), stage + 1 < weights.stages.count {
                    // The next stage's overlapping patch embedding.
                    view = View(point: point, kernel: kernel, stride: weights.stages[stage + 1].stride, padding: kernel / 2, input: map,
                                output: plan.stageSizes[stage + 1])
                } else {
                    // A reduction (sr) conv: patches side by side.
                    view = View(point: point, kernel: kernel, stride: kernel, padding: 0, input: map,
                                output: MapSize(height: map.height / kernel, width: map.width / kernel))
                }
            }
            viewOfLayer[layer.name] = view.key
            if !(views[point]?.contains { $0.key == view.key } ?? false) { views[point, default: []].append(view) }
            if moments[view.key] == nil { moments[view.key] = Moments(features: layer.inFeatures) }
        }
    }

    /// The moments of the named layer's input; nil for layers not covered.
    public func moments(ofLayer name: String) -> Moments? { viewOfLayer[name].flatMap { moments[$0] } }


    public func observe(_ point: QuantPoint, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
        guard let list = views[point], let grid = grids[point] else { return }
        for view in list {
            guard var m = moments.removeValue(forKey: view.key) else { continue }
            accumulate(view, into: &m, values: values, rows: rows, channels: channels, grid: grid)
            moments[view.key] = m
        }
    }

    private func accumulate(_ view: View, into m: inout Moments, values: UnsafeMutablePointer<Float>, rows: Int, channels: Int,
                            grid: QuantParams) {
        let k = m.features
        var x: [Float]
        var count: Int
        if let input = view.input, let output = view.output {
            count = output.pixels
            x = [Float](repeating: 0, count: count * k)
            x.withUnsafeMutableBufferPointer {
                ck_im2col_hwc_f32(values, input.height, input.width, channels, view.kernel, view.stride, view.padding,
                                  output.height, output.width, $0.baseAddress!, 0, output.height)
            }
        } else {
            count = rows
            x = Array(UnsafeBufferPointer(start: values, count: rows * channels))
        }
        guard count > 0, x.count == count * k else { return }
        let sampled = min(count, rowsPerObservation)
        if sampled < count {
            var picked = [Float](repeating: 0, count: sampled * k)
            for s in 0 ..< sampled {
                let r = s * count / sampled
                for j in 0 ..< k { picked[s * k + j] = x[r * k + j] }
            }
            x = picked
            count = sampled
        }
        x.withUnsafeBufferPointer { ck_column_sums_f32($0.baseAddress!, count, k, &m.sums) }
        // Zero padding stays exact: every grid holds 0.
        var rounded = x
        rounded.withUnsafeMutableBufferPointer { ck_fake_quantize_f32($0.baseAddress!, $0.count, grid.scale, grid.zeroPoint) }
        rounded.withUnsafeBufferPointer { ck_column_sums_f32($0.baseAddress!, count, k, &m.quantizedSums) }
        // Σ x·xᵀ as (xᵀ)·(xᵀ)ᵀ.
        var transposed = [Float](repeating: 0, count: count * k)
        for r in 0 ..< count {
            for j in 0 ..< k { transposed[j * count + r] = x[r * k + j] }
        }
        var outer = [Float](repeating: 0, count: k * k)
        transposed.withUnsafeBufferPointer { t in
            outer.withUnsafeMutableBufferPointer { ck_matmul_transposed_f32(t.baseAddress!, k, count, t.baseAddress!, k, $0.baseAddress!) }
        }
        for i in 0 ..< k * k { m.outerSums[i] += Double(outer[i]) }
        m.rows += count
    }
}
