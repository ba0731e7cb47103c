#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Refuses weights whose values make a model silently useless, naming the tensor: a NaN or an infinity
/// anywhere turns every logit into NaN (and every mask into class 0); a negative BatchNorm variance
/// has no square root; an int8 weight scale that is not a normal positive number, or is absurdly large,
/// zeroes or overflows its layer. Values that are legal but suspicious come back as warnings.
enum WeightValueCheck {
    /// Largest int8 weight scale accepted: int8 weights up to ±1.27e6, far beyond any trained network.
    static let largestWeightScale: Float = 1e4
    /// Scales above this (weights beyond ±127) are warned about.
    static let suspiciousWeightScale: Float = 1

    /// Checks every floating-point tensor of `file`; returns the warnings.
    static func check(_ file: SafeTensorsFile) throws -> [String] {
        var warnings: [String] = []
        for entry in file.entries where entry.dtype.isFloatingPoint {
            let values = try file.floats(entry)
            let name = entry.name
            func fail(_ index: Int, _ reason: String) -> ModelError {
                .badTensorEntry(path: file.path, tensor: name, reason: "value \(index) is \(values[index]): \(reason)")
            }
            for i in 0 ..< values.count where !values[i].isFinite {
                throw fail(i, "weights must be finite numbers")
            }
            if name.hasSuffix("running_var") {
                if let i = (0 ..< values.count).first(where: { values[$0] < 0 }) { throw fail(i, "a BatchNorm variance cannot be negative") }
            }
            if name.hasSuffix(".weight_scale") {
                if let i = (0 ..< values.count).first(where: { !(values[$0].isNormal && values[$0] > 0) }) {
                    throw fail(i, "an int8 weight scale must be a positive normal number")
                }
                if let i = (0 ..< values.count).first(where: { values[$0] > largestWeightScale }) {
                    throw fail(i, "an int8 weight scale over \(largestWeightScale) makes weights beyond ±\(127 * largestWeightScale)")
                }
                if let i = (0 ..< values.count).first(where: { values[$0] > suspiciousWeightScale }) {
                    warnings.append("\(file.path): tensor '\(name)': value \(i) is \(values[i]): an int8 weight scale over "
                        + "\(suspiciousWeightScale) means weights beyond ±127, unusual for a trained network")
                }
            }
        }
        return warnings
    }
}

/// Where model warnings go by default: standard error, one line each.
public enum ModelWarnings {
    public static let standardError: (String) -> Void = { writeToStandardError("warning: \($0)\n") }
}
