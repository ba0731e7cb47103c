import Glibc

extension String {
    /// printf-style formatting with the output of Foundation's `String(format:)` for the conversions
    /// used here: numbers go through the C library's `vsnprintf` (as Foundation's do), `%@` takes any
    /// value's description (with `%-11@`-style width), `%%` is a percent sign. `%d`/`%i`/`%u`/`%x`
    /// without a length modifier read a Swift Int or UInt as 64 bits. (String(format:) is in the full
    /// Foundation, which links ICU's data into the binary.)
    public init(cFormat format: String, _ arguments: Any...) {
        var out = ""
        var remaining = arguments[...]
        var scalars = format.unicodeScalars[...]
        while let scalar = scalars.popFirst() {
            guard scalar == "%" else {
                out.unicodeScalars.append(scalar)
                continue
            }
            var spec = "%"
            var conversion: Unicode.Scalar = "%"
            while let next = scalars.popFirst() {
                if "diouxXeEfFgGaAc@%".unicodeScalars.contains(next) {
                    conversion = next
                    break
                }
                spec.unicodeScalars.append(next)
            }
            switch conversion {
            case "%":
                out += "%"
            case "@":
                let text = remaining.popFirst().map { "\($0)" } ?? ""
                out += Self.padded(text, spec: spec)
            default:
                guard let argument = remaining.popFirst() else { break }
                out += Self.formatted(argument, spec: spec, conversion: conversion)
            }
        }
        self = out
    }

    /// `%@` with a width: spaces before the text, or after it with the `-` flag.
    private static func padded(_ text: String, spec: String) -> String {
        let flags = spec.dropFirst()
        let width = Int(flags.filter(\.isNumber)) ?? 0
        let padding = String(repeating: " ", count: Swift.max(0, width - text.count))
        return flags.hasPrefix("-") ? text + padding : padding + text
    }

    /// One numeric conversion through vsnprintf.
    private static func formatted(_ argument: Any, spec: String, conversion: Unicode.Scalar) -> String {
        var spec = spec
        let value: CVarArg
        switch argument {
        case let number as Int:
            value = number
            if "diouxX".unicodeScalars.contains(conversion), !spec.contains("l") { spec += "l" }
        case let number as UInt:
            value = number
            if "diouxX".unicodeScalars.contains(conversion), !spec.contains("l") { spec += "l" }
        case let number as CVarArg:
            value = number
        default:
            return "\(argument)"
        }
        spec.unicodeScalars.append(conversion)
        return withVaList([value]) { list in
            var buffer = [CChar](repeating: 0, count: 64)
            let length = Int(vsnprintf(&buffer, buffer.count, spec, list))
            guard length >= buffer.count else { return String(cString: buffer) }
            return withVaList([value]) { again in
                buffer = [CChar](repeating: 0, count: length + 1)
                _ = vsnprintf(&buffer, buffer.count, spec, again)
                return String(cString: buffer)
            }
        }
    }
}
