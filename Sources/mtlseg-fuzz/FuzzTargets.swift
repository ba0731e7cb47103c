import Foundation
import MTLSegCore
import MTLSegDaemon
import MTLSegWire

/// The parsers that take bytes from outside, as libFuzzer targets. Each must turn any
/// input into a value or a thrown error — never a crash, a hang or a runaway allocation.
enum FuzzTarget: String, CaseIterable {
    /// Both directions of the socket protocol: every message type, split at random points.
    case wire
    /// mtlsegd's TOML configuration.
    case config
    /// Model files: the safetensors container, the description, the memory plan and the weights it implies.
    case model

    func run(_ data: Data) {
        switch self {
        case .wire:
            var decoder = MessageDecoder(limit: 1 << 16)
            decoder.append(Array(data))
            while true {
                guard let message = try? decoder.next() else { break }
                // What decodes must encode and decode to the same message.
                var again = MessageDecoder(limit: 1 << 26)
                again.append(MessageEncoder.encode(message))
                precondition((try? again.next()) == message, "a decoded message did not survive re-encoding")
            }
        case .config:
            _ = try? DaemonConfig.parse(String(decoding: data, as: UTF8.self), file: "fuzz.toml")
        case .model:
            guard let source = try? ModelSource(bytes: data, name: "fuzz.safetensors") else { return }
            // Planned as a load plans it, before any allocation: the memory both engines would need at the model's
            // input size, with the arithmetic that used to trap on huge descriptions, against a budget; then,
            // within it, the forward pass's shapes.
            let input = source.description.input ?? InputSize(width: 512, height: 512)
            let budget = MemoryBudget(megabytes: 256, raisedBy: "the fuzz target")
            for int8 in [false, true] {
                guard (try? EngineFactory.checkBudget(source: source, height: input.height, width: input.width, threads: 4, int8: int8,
                                                      budget: budget)) != nil else { return }
            }
            _ = ForwardPlan(description: source.description, height: input.height, width: input.width)
            // Bound the work: a valid header may describe a huge network.
            let e = source.description.encoder
            guard e.hiddenSizes.reduce(0, +) * e.depths.reduce(0, +) < 1 << 16, source.description.decoderHiddenSize < 1024 else { return }
            _ = try? MTLSegFormerWeights(source: source)
        }
    }

    /// Chosen by MTLSEG_FUZZ_TARGET when libFuzzer runs the binary.
    static var selected: FuzzTarget {
        FuzzTarget(rawValue: ProcessInfo.processInfo.environment["MTLSEG_FUZZ_TARGET"] ?? "") ?? .wire
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzTarget.selected.run(Data(bytes: data, count: size))
    return 0
}

#if FUZZING
/// Built with -sanitize=fuzzer: libFuzzer's driver runs the selected target.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@main
struct RunFuzzer {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzOneInput($0, $1) })
    }
}
#else
/// Without libFuzzer: replays files through a target, for regression tests over the
/// corpus and every input that once crashed.
@main
struct ReplayFuzzInputs {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: mtlseg-fuzz wire|config|model FILE…")
            exit(2)
        }
        for path in arguments.dropFirst() {
            target.run(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        print("\(arguments.count - 1) inputs replayed through \(name)")
    }
}
#endif
