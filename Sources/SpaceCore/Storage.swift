import CKernels
import Foundation

/// Contiguous Float32 memory owned by tensors.
///
/// Large buffers come from the engine's arena (Sources/CKernels/memory.c): a training step allocates the
/// same shapes every step, and the arena hands the same resident pages back, best fit, whatever the
/// sizes, so memory is neither re-zeroed by the kernel nor held once per size.
public final class Storage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// From the scratch arena: memory that lives only inside one op (a fused op's intermediate map).
    let isScratch: Bool

    /// Uninitialised storage of `count` floats.
    public init(count: Int) {
        self.count = count
        isScratch = false
        let bytes = Swift.max(count, 1) * MemoryLayout<Float>.stride
        guard let raw = sk_mem_alloc(bytes) else {
            fatalError("out of memory: a tensor of \(count) floats (\(bytes) bytes) could not be allocated")
        }
        self.pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        Profiler.allocated(bytes: count * MemoryLayout<Float>.stride)
    }

    /// Uninitialised scratch of `count` floats, for use within one op only (never a tensor's storage
    /// that outlives the op).
    init(scratch count: Int) {
        self.count = count
        isScratch = true
        let bytes = Swift.max(count, 1) * MemoryLayout<Float>.stride
        guard let raw = sk_mem_alloc_scratch(bytes) else {
            fatalError("out of memory: \(bytes) bytes of scratch could not be allocated")
        }
        self.pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
    }

    /// Storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(count: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Storage holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        let bytes = Swift.max(count, 1) * MemoryLayout<Float>.stride
        if isScratch { sk_mem_free_scratch(pointer, bytes) } else { sk_mem_free(pointer, bytes) }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}

/// How much memory tensors hold (see sk_memory.h).
public enum TensorMemory {
    public struct Stats: Sendable {
        /// Bytes in live tensors now, and the most at once since `resetPeak()`.
        public var live: Int, peakLive: Int
        /// The arena's high-water mark (its share of resident memory), the free bytes below it, and the
        /// most scratch live at once since `resetPeak()`.
        public var arena: Int, arenaFree: Int, scratch: Int
    }

    public static var stats: Stats {
        var s = sk_mem_stats()
        sk_mem_get_stats(&s)
        return Stats(live: Int(s.live_bytes), peakLive: Int(s.peak_live_bytes), arena: Int(s.arena_bytes),
                     arenaFree: Int(s.arena_free_bytes), scratch: Int(s.scratch_bytes))
    }

    public static func resetPeak() { sk_mem_reset_peak() }
}

/// Scratch memory from the tensor arena for a kernel's own arrays (statistics, partial sums): reused
/// pages instead of fresh, zeroed allocations on every call. Uninitialised.
final class ScratchBuffer<Element> {
    let count: Int
    let pointer: UnsafeMutablePointer<Element>

    init(count: Int) {
        self.count = count
        let bytes = Swift.max(count, 1) * MemoryLayout<Element>.stride
        guard let raw = sk_mem_alloc_scratch(bytes) else { fatalError("out of memory: \(bytes) bytes of kernel scratch") }
        pointer = raw.bindMemory(to: Element.self, capacity: Swift.max(count, 1))
    }

    deinit { sk_mem_free_scratch(pointer, Swift.max(count, 1) * MemoryLayout<Element>.stride) }
}
