// swift-tools-version:6.0
// Kept at 6.2 or lower: Debian's arm64 Swift (6.2.3) is how the project is proven on ARM.
import PackageDescription

// SwiftPM compiles C at -O0 in debug builds; the kernels must be fast in tests too.
let optimisedC: [CSetting] = [.unsafeFlags(["-O3"])]

let package = Package(
    name: "mtlseg",
    products: [
        .executable(name: "mtlseg", targets: ["mtlseg"]),
        .executable(name: "mtlsegd", targets: ["mtlsegd"]),
        .library(name: "MTLSegCore", targets: ["MTLSegCore"]),
        .library(name: "MTLSegImage", targets: ["MTLSegImage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CV4L2", pkgConfig: "libv4l2", providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // C: numeric kernels, and the PNG/JPEG codecs (libpng and libjpeg report errors by longjmp,
        // which Swift cannot catch, so the calls into them live in C).
        .target(name: "CKernels", cSettings: optimisedC, linkerSettings: [.linkedLibrary("m")]),
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg")]),

        // Swift libraries.
        // Locks, threads, printf-style numbers, JSON values and path strings: the few things taken
        // from the full Foundation, whose static link adds ICU's data (~38 MB) to each binary.
        .target(name: "MTLSegEssentials"),
        .target(name: "MTLSegCore", dependencies: ["CBLAS", "CKernels", "MTLSegEssentials"]),
        .target(name: "MTLSegImage", dependencies: ["CImageCodecs", "MTLSegEssentials"]),
        .target(name: "MTLSegQuant", dependencies: ["MTLSegCore", "CKernels", "MTLSegEssentials"]),
        .target(name: "MTLSegCapture", dependencies: ["CV4L2", "MTLSegImage", "MTLSegEssentials"]),
        // AF_UNIX stream sockets (the mask protocol and the metrics' HTTP both run on one).
        .target(name: "MTLSegSocket"),
        // The protocol's specification and its Python client live beside the Swift code that speaks it.
        .target(name: "MTLSegWire", dependencies: ["MTLSegSocket", "MTLSegEssentials"], exclude: ["PROTOCOL.md", "python"]),
        .target(name: "MTLSegDaemon", dependencies: [
            "MTLSegCore", "MTLSegImage", "MTLSegCapture", "MTLSegWire", "MTLSegSocket", "CSystemd", "MTLSegEssentials",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),

        // mtlsegd's command line, in a library so that `mtlseg` can run it too (see mtlseg's main).
        .target(name: "MTLSegDaemonCLI", dependencies: [
            "MTLSegDaemon", "MTLSegEssentials",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Executables. The Debian package ships only `mtlseg`, which runs as mtlsegd when invoked by
        // that name (a link): the two share ~14 MB of Swift runtime and Foundation.
        .executableTarget(name: "mtlseg", dependencies: [
            "MTLSegCore", "MTLSegImage", "MTLSegQuant", "MTLSegCapture", "MTLSegWire", "MTLSegSocket", "MTLSegEssentials", "MTLSegDaemon",
            "MTLSegDaemonCLI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "mtlsegd", dependencies: ["MTLSegDaemonCLI", "MTLSegCore"]),

        // libFuzzer targets (Tests/Fuzz/run.sh builds them with -sanitize=fuzzer); a plain build replays inputs.
        .executableTarget(name: "mtlseg-fuzz", dependencies: ["MTLSegCore", "MTLSegDaemon", "MTLSegWire"]),

        // Tests.
        .testTarget(name: "CKernelsTests", dependencies: ["MTLSegTestSupport", "CKernels", "MTLSegEssentials"]),
        .testTarget(name: "MTLSegEssentialsTests", dependencies: ["MTLSegEssentials"]),
        .testTarget(name: "MTLSegCoreTests", dependencies: ["MTLSegTestSupport", "MTLSegCore", "MTLSegEssentials"], resources: [.copy("Fixtures")]),
        .testTarget(name: "MTLSegImageTests", dependencies: ["MTLSegImage"]),
        .testTarget(name: "MTLSegQuantTests", dependencies: ["MTLSegTestSupport", "MTLSegQuant", "MTLSegCore", "MTLSegEssentials", "CAllocationCounter"]),
        // Counts a thread's heap allocations (it replaces malloc in the test executable): a frame allocates nothing.
        .target(name: "CAllocationCounter", path: "Tests/AllocationCounter"),
        .target(name: "MTLSegTestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "MTLSegWireTests", dependencies: ["MTLSegTestSupport", "MTLSegWire", "MTLSegEssentials"]),
        .testTarget(name: "MTLSegSocketTests", dependencies: ["MTLSegSocket"]),
        .testTarget(name: "MTLSegDaemonTests", dependencies: [
            "MTLSegTestSupport", "MTLSegDaemon", "MTLSegWire", "MTLSegSocket", "MTLSegCapture", "MTLSegImage", "mtlsegd", "mtlseg",
            "mtlseg-fuzz",
        ]),
        // Runs the built `mtlseg` binary end to end, as a user would.
        .testTarget(name: "MTLSegToolTests", dependencies: ["mtlseg", "MTLSegCore", "MTLSegImage", "MTLSegSocket"]),
        .testTarget(name: "MTLSegCaptureTests", dependencies: ["MTLSegCapture"]),
    ],
    swiftLanguageModes: [.v5]
)
