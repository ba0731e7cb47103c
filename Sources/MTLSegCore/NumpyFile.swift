#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Writes float32 arrays as NumPy `.npy` files (format version 1.0), so logits
/// can be compared with PyTorch's in a line of Python.
public enum NumpyFile {
    public static func serialize(_ values: UnsafeBufferPointer<Float>, shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + header length (2) + header must be a multiple of 64, ending in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    public static func write(_ tensor: Tensor, to path: String) throws {
        let data = serialize(UnsafeBufferPointer(start: tensor.pointer, count: tensor.count), shape: tensor.shape)
        try FileReplacement.replace(path, with: data)
    }
}
