/// A fixed-size run of `Float`s on a 64-byte boundary (a cache line, and the
/// widest SIMD load), which Swift's own arrays do not promise.
public final class FloatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// This buffer read as a rows×columns matrix, transposed.
    public func transposed(rows: Int, columns: Int) -> FloatBuffer {
        precondition(rows * columns == count, "\(rows)x\(columns) does not match \(count) values")
        let out = FloatBuffer(count: count)
        for r in 0 ..< rows {
            for c in 0 ..< columns { out.pointer[c * rows + r] = pointer[r * columns + c] }
        }
        return out
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }
}

/// A float tensor: an aligned buffer and its shape (row-major).
public struct Tensor {
    public let shape: [Int]
    public let storage: FloatBuffer

    public init(shape: [Int], storage: FloatBuffer) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match \(storage.count) values")
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], values: [Float]) {
        self.init(shape: shape, storage: FloatBuffer(values))
    }

    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var values: [Float] { storage.array }
}
