import Foundation
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

    /// Runs every input (a normalised [C][H][W] image at width×height, produced by `input(i)`
    /// into the given buffer) through the fp32 engine and returns the observed grids.
    public func measureRanges(count: Int, input: (Int, UnsafeMutablePointer<Float>) throws -> Void,
                              progress: (Int) -> Void = { _ in }) rethrows -> [String: QuantParams] {
        let engine = FP32Engine(weights: weights, height: height, width: width)
        let observer = MinMaxObserver()
        engine.observer = observer
        let pixels = FloatBuffer(count: weights.description.encoder.numChannels * width * height)
        for i in 0 ..< count {
            try input(i, pixels.pointer)
            engine.run(input: pixels.pointer)
            progress(i + 1)
        }
        return observer.quantParams()
    }
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
    public init(fp32: MTLSegFormerWeights, activations: [String: QuantParams], calibration: CalibrationInfo) {
        var description = fp32.description
        if description.input == nil { description.input = InputSize(width: calibration.width, height: calibration.height) }
        let quantized = fp32.quantizingWeights()
        weights = quantized.replacingDescription(description)
        record = QuantizationRecord(activations: activations, calibration: calibration)
    }

    public func makeEngine(height: Int, width: Int, threads: Int) throws -> Int8Engine {
        try Int8Engine(weights: weights, activations: record.activations, height: height, width: width, threads: threads)
    }
}
