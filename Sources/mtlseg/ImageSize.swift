import ArgumentParser
import MTLSegCore
import MTLSegEssentials

/// `WxH` on the command line.
struct ImageSize: ExpressibleByArgument, Equatable {
    let width: Int
    let height: Int

    /// Each side's bounds: those of a model's input (every mtlsegd capture size, `DaemonConfig.captureSides`, is one).
    static let sides = InputSize.sides
    /// What a size must be, for error messages.
    static let expectation = "WxH with each side \(sides.lowerBound) to \(sides.upperBound) (e.g. 640x480)"

    init?(argument: String) {
        guard let size = WidthByHeight.parse(argument.lowercased(), sides: Self.sides) else { return nil }
        width = size.width
        height = size.height
    }

    /// For `transform:`, so that a bad size says what a size must be (a failed init(argument:) says only "invalid").
    /// (A @Sendable closure, which ArgumentParser's `transform:` takes; a static method passed there is not one.)
    static let parse: @Sendable (String) throws -> ImageSize = { text in
        guard let size = ImageSize(argument: text) else { throw ValidationError("expected \(expectation)") }
        return size
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
