#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegCore
import MTLSegEssentials
import MTLSegImage

/// The label maps of `calibrate --labels DIR`: DIR/<task>/<image name>.png, grey levels = class ids, 255 = ignore.
/// What would make an mIoU wrong without a word is refused (a colour or 16-bit map, a grey level that is no class of
/// the task) or said on standard error (a task without its folder, held-out images without a map, maps that ignore
/// every pixel, masks saved as 0/255).
final class LabelMaps {
    let folder: String
    private let tasks: [TaskDescription]
    private let budget: PixelBudget
    /// Per task: the held-out images that have a map, and the pixels those maps score (not 255).
    private var mapped: [Set<String>]
    private var scoredPixels: [Int]
    private var warnedZeroOr255: Set<Int> = []

    init(folder: String, tasks: [TaskDescription], budget: PixelBudget) throws {
        guard let isDirectory = Path.isDirectory(folder) else { throw ToolError("--labels \(folder): no such folder") }
        guard isDirectory else { throw ToolError("--labels \(folder) is a file; give the folder that holds one folder of label maps per task") }
        let missing = tasks.filter { Path.isDirectory(Path.appending(folder, $0.name)) != true }.map(\.name)
        guard missing.count < tasks.count else {
            throw ToolError("--labels \(folder) has no folder for any task (expected \(tasks.map { "\(folder)/\($0.name)/" }.joined(separator: ", ")))")
        }
        for task in missing {
            writeToStandardError("warning: --labels \(folder) has no folder '\(task)': task '\(task)' gets no mIoU\n")
        }
        self.folder = folder
        self.tasks = tasks
        self.budget = budget
        mapped = tasks.map { _ in [] }
        scoredPixels = tasks.map { _ in 0 }
    }

    /// The map of `image` for task `t`, nil when it has none.
    func map(for image: String, task t: Int) throws -> (width: Int, height: Int, classes: [UInt8])? {
        let task = tasks[t]
        let path = Path.appending(Path.appending(folder, task.name), Path.deletingPathExtension(Path.lastComponent(image)) + ".png")
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        if Self.pngBitDepth(path) == 16 {
            throw ToolError("\(path): a 16-bit PNG; label maps are 8-bit grey levels = class ids (16-bit values would be cut to their high byte)")
        }
        let map = try ImageFile.read(path: path, budget: budget)
        var classes = [UInt8](repeating: 0, count: map.width * map.height)
        var scored = 0, zeros = 0
        for i in classes.indices {
            let (r, g, b) = (map.pixels[3 * i], map.pixels[3 * i + 1], map.pixels[3 * i + 2])
            guard r == g && g == b else {
                throw ToolError("\(path): a colour picture (pixel \(i % map.width), \(i / map.width) is \(r), \(g), \(b)); "
                    + "label maps are grey levels = class ids")
            }
            guard Int(r) < task.classCount || r == 255 else {
                throw ToolError("\(path): grey level \(r) at pixel \(i % map.width), \(i / map.width) is not a class of task "
                    + "'\(task.name)' (0 to \(task.classCount - 1), or 255 to ignore)")
            }
            if r != 255 { scored += 1 }
            if r == 0 { zeros += 1 }
            classes[i] = r
        }
        if mapped[t].insert(image).inserted {
            scoredPixels[t] += scored
            // Only 0 and 255, both present: most likely a binary mask saved the usual image way, its foreground then "ignore".
            if zeros == scored && zeros > 0 && scored < classes.count && warnedZeroOr255.insert(t).inserted {
                writeToStandardError("warning: \(path) holds only 0 and 255: 255 means 'ignore', so its other class is not scored; "
                    + "a mask of task '\(task.name)' must use its class ids (0 to \(task.classCount - 1))\n")
            }
        }
        return (map.width, map.height, classes)
    }

    /// Says which tasks' mIoU covers fewer than all `heldOut` images (or none), once the maps have been read.
    func reportCoverage(heldOut: Int) {
        for (t, task) in tasks.enumerated() where Path.isDirectory(Path.appending(folder, task.name)) == true {
            let example = "\(folder)/\(task.name)/<held-out image name>.png"
            if mapped[t].isEmpty {
                writeToStandardError("warning: --labels: no map in \(folder)/\(task.name)/ for any of the \(heldOut) held-out images "
                    + "(looked for \(example)): task '\(task.name)' gets no mIoU\n")
            } else if scoredPixels[t] == 0 {
                writeToStandardError("warning: --labels: the maps of task '\(task.name)' mark every pixel 255 (ignore): it gets no mIoU\n")
            } else if mapped[t].count < heldOut {
                writeToStandardError("warning: --labels: maps for \(mapped[t].count) of the \(heldOut) held-out images in \(folder)/\(task.name)/: "
                    + "task '\(task.name)''s mIoU is over those \(mapped[t].count)\n")
            }
        }
    }

    /// A PNG's bit depth from its header (ImageFormat.pngBitDepth), nil when the file is not a PNG.
    static func pngBitDepth(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 25)
        guard read(fd, &header, 25) == 25 else { return nil }
        return ImageFormat.pngBitDepth(header: header)
    }
}
