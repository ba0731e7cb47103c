import MTLSegCore
@testable import MTLSegDaemon
import MTLSegImage
import XCTest

/// What a loaded model tells clients about itself.
final class LoadedModelTests: XCTestCase {
    /// A model that names no class colours is streamed with the colours `mtlseg infer` draws its masks in,
    /// so `mtlseg subscribe --color` and `infer` colour the same model alike.
    func testClassesWithoutColoursGetTheDefaultPalette() throws {
        let checkpoint = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/segformer-tiny-hf").path
        let loaded = try LoadedModel.load(path: checkpoint, threads: 1, fallbackSize: InputSize(width: 64, height: 48))
        let task = try XCTUnwrap(loaded.stream.tasks.first)
        XCTAssertNil(loaded.description.tasks[0].colors, "the fixture names no colours")
        XCTAssertEqual(task.colors, Palette.default.colors.prefix(task.classes.count).map { $0.map(Int.init) })
    }
}
