import CV4L2
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// A frame interval as V4L2 gives it (seconds per frame as a fraction).
public struct FrameInterval: Equatable, Sendable, CustomStringConvertible {
    public var numerator: UInt32
    public var denominator: UInt32
    public init(numerator: UInt32, denominator: UInt32) {
        self.numerator = numerator
        self.denominator = denominator
    }
    public var framesPerSecond: Double { numerator == 0 ? 0 : Double(denominator) / Double(numerator) }
    public var description: String {
        let fps = framesPerSecond
        return fps == fps.rounded() ? String(Int(fps)) : String(cFormat: "%.2f", fps)
    }
}

/// The frame rates a device offers at one size.
public enum FrameIntervals: Equatable, Sendable {
    case discrete([FrameInterval])
    /// Any interval from `min` to `max` (continuous when `step` is 1/1 of nothing, as V4L2 reports it).
    case stepwise(min: FrameInterval, max: FrameInterval, step: FrameInterval)
    case unknown
}

/// The sizes a device offers in one pixel format.
public enum FrameSizes: Equatable, Sendable {
    case discrete([(width: Int, height: Int)])
    case stepwise(minWidth: Int, maxWidth: Int, stepWidth: Int, minHeight: Int, maxHeight: Int, stepHeight: Int)
    case unknown

    public static func == (a: FrameSizes, b: FrameSizes) -> Bool {
        switch (a, b) {
        case let (.discrete(x), .discrete(y)): return x.map { [$0.width, $0.height] } == y.map { [$0.width, $0.height] }
        case let (.stepwise(a0, a1, a2, a3, a4, a5), .stepwise(b0, b1, b2, b3, b4, b5)):
            // Typed: with Swift 6.2's Foundation an untyped array literal could also be an IndexPath.
            let first: [Int] = [a0, a1, a2, a3, a4, a5], second: [Int] = [b0, b1, b2, b3, b4, b5]
            return first == second
        case (.unknown, .unknown): return true
        default: return false
        }
    }
}

/// One native pixel format of a device (VIDIOC_ENUM_FMT).
public struct PixelFormatDescription: Equatable, Sendable {
    public var fourcc: FourCC
    public var description: String
    public var compressed: Bool
}

/// VIDIOC_ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS on an open device. Each list ends where
/// the driver answers EINVAL; a driver without the call (ENOTTY) gives an empty list or `.unknown`.
enum V4L2Enumeration {
    static func formats(_ device: VideoDevice) -> [PixelFormatDescription] {
        var result: [PixelFormatDescription] = []
        for index in 0 ..< 64 {
            var entry = v4l2_fmtdesc()
            entry.index = UInt32(index)
            entry.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            guard device.attempt(CV4L2_VIDIOC_ENUM_FMT, &entry) == 0 else { break }
            result.append(PixelFormatDescription(fourcc: FourCC(rawValue: entry.pixelformat),
                                                 description: cString(entry.description),
                                                 compressed: entry.flags & UInt32(V4L2_FMT_FLAG_COMPRESSED) != 0))
        }
        return result
    }

    static func sizes(_ device: VideoDevice, format: FourCC) -> FrameSizes {
        var discrete: [(width: Int, height: Int)] = []
        for index in 0 ..< 256 {
            var entry = v4l2_frmsizeenum()
            entry.index = UInt32(index)
            entry.pixel_format = format.rawValue
            guard device.attempt(CV4L2_VIDIOC_ENUM_FRAMESIZES, &entry) == 0 else { break }
            if entry.type == V4L2_FRMSIZE_TYPE_DISCRETE.rawValue {
                discrete.append((Int(entry.discrete.width), Int(entry.discrete.height)))
            } else {
                let s = entry.stepwise
                return .stepwise(minWidth: Int(s.min_width), maxWidth: Int(s.max_width), stepWidth: Int(max(s.step_width, 1)),
                                 minHeight: Int(s.min_height), maxHeight: Int(s.max_height), stepHeight: Int(max(s.step_height, 1)))
            }
        }
        return discrete.isEmpty ? .unknown : .discrete(discrete)
    }

    static func intervals(_ device: VideoDevice, format: FourCC, width: Int, height: Int) -> FrameIntervals {
        var discrete: [FrameInterval] = []
        for index in 0 ..< 256 {
            var entry = v4l2_frmivalenum()
            entry.index = UInt32(index)
            entry.pixel_format = format.rawValue
            entry.width = UInt32(width)
            entry.height = UInt32(height)
            guard device.attempt(CV4L2_VIDIOC_ENUM_FRAMEINTERVALS, &entry) == 0 else { break }
            if entry.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue {
                discrete.append(FrameInterval(numerator: entry.discrete.numerator, denominator: entry.discrete.denominator))
            } else {
                let s = entry.stepwise
                return .stepwise(min: FrameInterval(numerator: s.min.numerator, denominator: s.min.denominator),
                                 max: FrameInterval(numerator: s.max.numerator, denominator: s.max.denominator),
                                 step: FrameInterval(numerator: s.step.numerator, denominator: s.step.denominator))
            }
        }
        return discrete.isEmpty ? .unknown : .discrete(discrete)
    }
}

/// A NUL-terminated C char array imported as a tuple, as a String.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { bytes in
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
