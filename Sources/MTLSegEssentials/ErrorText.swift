#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// Why an operation failed, in words, for error messages: the system's reason for a failed file
/// read or write ("No such file or directory"), else the error's own description. (NSError's
/// localizedDescription is in the full Foundation, which links ICU's data.)
public func errorReason(_ error: Error) -> String {
    if let error = error as? CocoaError, let underlying = error.underlying as? POSIXError {
        return String(cString: strerror(underlying.code.rawValue))
    }
    if let error = error as? POSIXError { return String(cString: strerror(error.code.rawValue)) }
    if let error = error as? DecodingError {
        switch error {
        case let .dataCorrupted(context), let .keyNotFound(_, context), let .typeMismatch(_, context), let .valueNotFound(_, context):
            return context.underlyingError.map { "\($0)" } ?? context.debugDescription
        @unknown default: return "\(error)"
        }
    }
    return "\(error)"
}

/// Writes `text` to standard error unbuffered, as FileHandle.standardError.write does.
public func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if written < 0 { if errno == EINTR { continue } else { return } }
        bytes = bytes.dropFirst(written)
    }
}
