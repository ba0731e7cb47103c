#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// How the daemon keeps glibc's allocator from holding on to the memory of models it no longer serves.
///
/// A model's weights and activation buffers are large blocks (hundreds of kB to MBs). glibc serves
/// such blocks with their own mappings, returned to the system on free, but it raises that threshold
/// to the size of every mapped block freed (up to 32 MiB): after the first reload, a model's buffers
/// come from the heap instead, where the freed ones stay resident between smaller live allocations.
/// A storm of reloads between an int8 and an fp32 model took the daemon from 65 to 150–240 MB that way.
enum Allocator {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    /// `M_MMAP_THRESHOLD` from <malloc.h>.
    private static let mmapThresholdOption: Int32 = -3
    /// glibc's default threshold: blocks of this size and larger get their own mapping.
    private static let mappedBlockSize: Int32 = 128 * 1024

    // Glibc's Swift module does not export <malloc.h>; look the functions up (absent on other C libraries).
    private static let library = dlopen(nil, RTLD_NOW)
    private static let mallopt: Mallopt? = dlsym(library, "mallopt").map { unsafeBitCast($0, to: Mallopt.self) }
    private static let mallocTrim: MallocTrim? = dlsym(library, "malloc_trim").map { unsafeBitCast($0, to: MallocTrim.self) }

    /// Fixes the mapping threshold at glibc's default, which also stops glibc from raising it: every large
    /// buffer keeps its own mapping and goes back to the system when freed.
    static func keepLargeBlocksMapped() {
        _ = mallopt?(mmapThresholdOption, mappedBlockSize)
    }

    /// Gives the system back the free pages inside the heaps (a model's smaller allocations leave
    /// holes that the heap's top trimming never reaches). Worth its few milliseconds after a reload.
    static func returnFreeMemory() {
        _ = mallocTrim?(0)
    }
}
