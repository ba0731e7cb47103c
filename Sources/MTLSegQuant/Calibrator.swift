#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore

/// Measures activation ranges by running the fp32 model on calibration inputs,
/// and turns them, with int8 weights, into an int8 model.
public struct Calibrator {
    public let weights: MTLSegFormerWeights
    public let width: Int
    public let height: Int

    public init(weights: MTLSegFormerWeights, width: Int, height: Int) {
        self.weights = weights
        self.width = width
        self.height = height
    }

    /// Runs every input (a normalised [C][H][W] image at width×height, written by
    /// `input(i)` into the given buffer, which returns false to skip it) through the fp32 engine and returns the
    /// grid `method` chooses for every quantization point. Methods that need
    /// histograms take a second pass over the inputs.
    public func measure(count: Int, method: RangeMethod = .minMax, input: (Int, UnsafeMutablePointer<Float>) throws -> Bool,
                        progress: (Int) -> Void = { _ in }) rethrows -> ActivationStatistics {
        let engine = FP32Engine(weights: weights, height: height, width: width)
        let pixels = FloatBuffer(count: weights.description.encoder.numChannels * width * height)
        let ranges = MinMaxObserver()
        engine.observer = ranges
        for i in 0 ..< count {
            if try input(i, pixels.pointer) { engine.run(input: pixels.pointer) }
            progress(i + 1)
        }
        let means = ranges.channelMeans()
        guard method.needsHistogram else { return ActivationStatistics(grids: ranges.quantParams(), channelMeans: means) }
        let histograms = HistogramObserver(ranges: ranges.ranges)
        engine.observer = histograms
        for i in 0 ..< count {
            if try input(i, pixels.pointer) { engine.run(input: pixels.pointer) }
            progress(count + i + 1)
        }
        return ActivationStatistics(grids: histograms.histograms.mapValues { $0.grid(method).params }, channelMeans: means)
    }
}

/// What calibration measured of the activations.
public struct ActivationStatistics {
    /// The u8 grid of every quantization point.
    public let grids: [QuantPoint: QuantParams]
    /// The mean of every channel at every point, for bias correction.
    public let channelMeans: [QuantPoint: [Float]]
}

/// An int8 model in memory: quantized weights and activation grids, as an int8 model file holds them.
public struct QuantizedModel {
    public let weights: MTLSegFormerWeights
    public let record: QuantizationRecord

    public init(weights: MTLSegFormerWeights, record: QuantizationRecord) {
        self.weights = weights
        self.record = record
    }

    /// Quantizes the weights of `fp32` and pairs them with measured activation grids.
    ///
    /// Rounding a layer's weights shifts its outputs on average by ΔW·E[x];
    /// with the input's channel means from calibration that shift is known and
    /// is taken back out of the bias ("bias correction"). Layers whose input
    /// means are unknown (the head's combine conv, over a concatenation) and the
    /// decoder's projections (one shared bias) keep theirs.
    public init(fp32: MTLSegFormerWeights, statistics: ActivationStatistics, calibration: CalibrationInfo) {
        var description = fp32.description
        // The size the grids were measured and the model judged at: other sizes' activations may range otherwise.
        description.input = InputSize(width: calibration.width, height: calibration.height)
        let inputs = Dictionary(uniqueKeysWithValues: fp32.int8LayerInputs.map { ($0.layer.name, $0.input) })
        let decoderNames = Set(fp32.decoder.stageProjections.map(\.name))
        let quantized = fp32.quantizingWeights().mappingLayers { layer in
            guard layer.quantized != nil, let point = inputs[layer.name], !point.isConcatenation,
                  let means = statistics.channelMeans[point], layer.inFeatures % means.count == 0 else { return layer }
            // The folded decoder's projections share one bias; correcting it would tie them together (and a
            // projection that later falls back to fp32 could not take its share back), so they are left as they are.
            guard !decoderNames.contains(layer.name) else { return layer }
            // E[x] repeats the channel means along the layer's input (for a conv's patches, channels vary fastest).
            let mean = (0 ..< layer.inFeatures).map { Double(means[$0 % means.count]) }
            let shift = WeightRefinement.meanShift(layer, layer.quantized!, mean: mean, quantizedMean: mean)
            return layer.addingToBias(shift.map { -Float($0) })
        }
        weights = quantized.replacingDescription(description)
        record = QuantizationRecord(grids: statistics.grids, calibration: calibration)
    }

    public func makeEngine(height: Int, width: Int, threads: Int) throws -> Int8Engine {
        try Int8Engine(weights: weights, record: record, height: height, width: width, threads: threads)
    }
}
