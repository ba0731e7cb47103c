import ArgumentParser
import Glibc
import MTLSegCore
import MTLSegDaemonCLI
import MTLSegEssentials

@main
struct MTLSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mtlseg",
        abstract: "Run, inspect and prepare multi-task segmentation models (MTLSegFormer) for mtlsegd.",
        discussion: """
        A model is an mtlseg model file (.safetensors with the model description in its metadata) \
        or an HF SegFormer checkpoint directory (config.json + model.safetensors).
        """,
        version: MTLSegVersion.string,
        subcommands: [InferCommand.self, InspectCommand.self, BenchCommand.self, CalibrateCommand.self, CompareCommand.self,
                      SubscribeCommand.self, StatusCommand.self, DevicesCommand.self, CaptureCommand.self])

    static func main() {
        // OpenBLAS read its environment when it loaded, before main: what it lacks takes a restart
        // of the process with the variables set (BLASEnvironment).
        BLASEnvironment.prepareProcess()
        // One binary serves as both tools where mtlsegd is a link to mtlseg (the Debian package).
        if CommandLine.arguments.first.map(Path.lastComponent) == "mtlsegd" {
            MTLSegDaemonCommand.main()
            return
        }
        main(nil)
    }
}
