/// Why a model file could not be loaded. Every case names the file and the
/// tensor or metadata field at fault, so a user can act on it.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case truncated(path: String, reason: String)
    case badHeader(path: String, reason: String)
    case badTensorEntry(path: String, tensor: String, reason: String)
    case overlappingTensors(path: String, first: String, second: String)
    case badMetadata(path: String, field: String, reason: String)
    case missingTensor(path: String, tensor: String)
    case wrongShape(path: String, tensor: String, expected: [Int], found: [Int])
    case wrongDType(path: String, tensor: String, expected: String, found: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "\(path): cannot read the model: \(reason)"
        case let .truncated(path, reason):
            return "\(path): the file is truncated: \(reason)"
        case let .badHeader(path, reason):
            return "\(path): bad safetensors header: \(reason)"
        case let .badTensorEntry(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .overlappingTensors(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' overlap in the data section"
        case let .badMetadata(path, field, reason):
            return "\(path): model description field '\(field)': \(reason)"
        case let .missingTensor(path, tensor):
            return "\(path): missing tensor '\(tensor)'"
        case let .wrongShape(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has shape \(found), the model description implies \(expected)"
        case let .wrongDType(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has dtype \(found), expected \(expected)"
        }
    }
}
