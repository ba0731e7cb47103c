import ArgumentParser
import MTLSegCore
import MTLSegImage

/// The limits a command holds what it loads to: memory for a model, pixels for an image file.
struct ResourceLimits: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Memory a model's weights and activations may take, in MiB (default: 2048, or half the machine's memory where less).",
                                            valueName: "MB"))
    var memoryBudget: Int?

    @Option(name: .long, help: ArgumentHelp("Most pixels an image file may declare; larger ones are refused before decoding.", valueName: "N"))
    var maxImagePixels: Int = PixelBudget.defaultPixels

    func validate() throws {
        if let memoryBudget { guard memoryBudget >= 16 else { throw ValidationError("--memory-budget must be at least 16 (MiB)") } }
        guard maxImagePixels >= 1 else { throw ValidationError("--max-image-pixels must be at least 1") }
    }

    var memory: MemoryBudget { MemoryBudget(megabytes: memoryBudget ?? MemoryBudget.defaultMegabytes, raisedBy: "--memory-budget MB") }
    var pixels: PixelBudget { PixelBudget(pixels: maxImagePixels, raisedBy: "--max-image-pixels N") }
}
